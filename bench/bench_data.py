"""Time the training-data path of one image: load_image_gt + build_rpn_targets; prints JSON.

    python bench/bench_data.py [--repeat N]

Per size (256x256 with IMAGE_MIN_DIM = IMAGE_MAX_DIM = 256, and 1024x1024 with the
default config): an in-memory dataset of 3 elliptic instances, default anchors in
pixels (16,368 and 261,888 of them), full-size masks as the data generator loads
them. Each figure is the median over --repeat images, in milliseconds: wall time,
and this thread's CPU time (steadier on a shared machine).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mrcnn import data  # noqa: E402
from mrcnn.anchors import compute_backbone_shapes, generate_pyramid_anchors  # noqa: E402
from mrcnn.config import Config  # noqa: E402
from mrcnn.dataset import Dataset  # noqa: E402


class EllipseDataset(Dataset):
    """`count` images of size x size with 3 random ellipses each, held in memory."""

    def __init__(self, size: int, count: int, seed: int = 0):
        super().__init__()
        self.add_class("bench", 1, "ellipse")
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[:size, :size]
        self.samples = []
        for i in range(count):
            self.add_image("bench", i, path=f"memory:{i}")
            image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            masks = np.zeros((size, size, 3), dtype=bool)
            for k in range(3):
                cy, cx = rng.uniform(0.2, 0.8, 2) * size
                ry, rx = rng.uniform(0.05, 0.2, 2) * size
                masks[..., k] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
                image[masks[..., k]] = 200
            self.samples.append((image, masks))
        self.prepare()

    def load_image(self, image_id):
        return self.samples[image_id][0]

    def load_mask(self, image_id):
        return self.samples[image_id][1], np.ones(3, dtype=np.int32)


def _config(size: int) -> Config:
    if size == 1024:
        return type("Default", (Config,), {"NAME": "bench"})()
    return type("Small", (Config,), {"NAME": "bench", "IMAGE_MIN_DIM": size,
                                     "IMAGE_MAX_DIM": size})()


def _time(size: int, repeat: int) -> dict:
    config = _config(size)
    anchors = generate_pyramid_anchors(
        config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
        compute_backbone_shapes(config, config.IMAGE_SHAPE), config.BACKBONE_STRIDES,
        config.RPN_ANCHOR_STRIDE)
    dataset = EllipseDataset(size, repeat)
    np.random.seed(0)
    wall, cpu = {"load": [], "rpn": []}, {"load": [], "rpn": []}
    for image_id in dataset.image_ids:
        marks = [(time.perf_counter(), time.thread_time())]
        image, meta, class_ids, boxes, masks = data.load_image_gt(
            dataset, config, image_id, use_mini_mask=config.USE_MINI_MASK)
        marks.append((time.perf_counter(), time.thread_time()))
        data.build_rpn_targets(image.shape, anchors, class_ids, boxes, config)
        marks.append((time.perf_counter(), time.thread_time()))
        for key, (start, end) in zip(("load", "rpn"), zip(marks, marks[1:])):
            wall[key].append(1000 * (end[0] - start[0]))
            cpu[key].append(1000 * (end[1] - start[1]))

    def median(values):
        return round(statistics.median(values), 3)

    return {
        "image_size": size,
        "anchors": int(len(anchors)),
        "instances": 3,
        "use_mini_mask": bool(config.USE_MINI_MASK),
        "ms_per_image": median([a + b for a, b in zip(wall["load"], wall["rpn"])]),
        "cpu_ms_per_image": median([a + b for a, b in zip(cpu["load"], cpu["rpn"])]),
        "load_image_gt_ms": median(wall["load"]),
        "build_rpn_targets_ms": median(wall["rpn"]),
        "load_image_gt_cpu_ms": median(cpu["load"]),
        "build_rpn_targets_cpu_ms": median(cpu["rpn"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="images per size")
    args = parser.parse_args()
    results = [_time(size, args.repeat) for size in (256, 1024)]
    print(json.dumps({
        "benchmark": "load_image_gt + build_rpn_targets",
        "repeat": args.repeat,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
