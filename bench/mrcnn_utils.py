"""Time the numpy helpers of mrcnn.utils at matterport's sizes; prints JSON.

    python bench/mrcnn_utils.py [--repeat N]

Sizes: 1024x1024 images, 100 instances, 261,888 anchors (COCO config),
6,000 boxes for NMS. Each figure is the best of --repeat runs, in milliseconds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import timing  # noqa: E402
from mrcnn import utils  # noqa: E402
from mrcnn.anchors import compute_backbone_shapes  # noqa: E402
from mrcnn.config import Config  # noqa: E402


def _random_boxes(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    yx = rng.integers(0, size - 64, size=(n, 2))
    hw = rng.integers(8, 64, size=(n, 2))
    return np.concatenate([yx, yx + hw], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    config = Config()
    boxes = _random_boxes(rng, 100, 1024)
    masks = np.zeros((1024, 1024, 100), dtype=bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    nms_boxes = _random_boxes(rng, 6000, 1024).astype(np.float32)
    nms_scores = rng.random(6000).astype(np.float32)
    proposals = _random_boxes(rng, 2000, 1024)
    image = rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
    mini = utils.minimize_mask(boxes, masks, config.MINI_MASK_SHAPE)
    shapes = compute_backbone_shapes(config, config.IMAGE_SHAPE)

    timings = {
        "extract_bboxes_1024x1024x100": lambda: utils.extract_bboxes(masks),
        "compute_overlaps_2000x100": lambda: utils.compute_overlaps(proposals, boxes),
        "compute_overlaps_masks_1024x1024_100x100": lambda: utils.compute_overlaps_masks(masks, masks),
        "non_max_suppression_6000_thr0.7": lambda: utils.non_max_suppression(nms_boxes, nms_scores, 0.7),
        "minimize_mask_100_to_56x56": lambda: utils.minimize_mask(boxes, masks, config.MINI_MASK_SHAPE),
        "expand_mask_100_from_56x56": lambda: utils.expand_mask(boxes, mini, (1024, 1024, 3)),
        "resize_image_480x640_square1024": lambda: utils.resize_image(image, 800, 1024),
        "generate_pyramid_anchors_1024": lambda: utils.generate_pyramid_anchors(
            config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS, shapes, config.BACKBONE_STRIDES,
            config.RPN_ANCHOR_STRIDE),
    }
    result = {
        "benchmark": "mrcnn_utils",
        "unit": "ms (best of repeat)",
        "repeat": args.repeat,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "timings": {name: timing.best_ms(fn, args.repeat, warmup=False)
                    for name, fn in timings.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
