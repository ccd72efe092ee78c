"""Mask R-CNN inference speed and memory; prints one JSON object.

    python bench/bench_inference.py --backbone resnet50 --size 256 --images 3
    KERAS_BACKEND=jax python bench/bench_inference.py --backbone resnet101 --size 1024

Figures:
    build_s              MaskRCNN(...) construction
    compile_s            first compiled step minus a steady step (XLA / jax.jit compile)
    step_s, step_min_s   median and min keras_model.predict_on_batch (compiled), molded
    detect_s, detect_min_s  median and min detect(images), end to end (mold, network,
                         unmold); on a shared machine the min is the steadier figure
    detect_images_per_s  images / detect_s
    peak_rss_mb          peak resident memory of the process

Static shapes make the cost independent of the weights, so random weights are used
unless --weights gives a file (e.g. the golden R50 file from make_golden_h5.py).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from mrcnn.config import Config  # noqa: E402
from mrcnn.model import MaskRCNN  # noqa: E402


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet101"])
    parser.add_argument("--size", type=int, default=256, help="IMAGE_MIN_DIM = IMAGE_MAX_DIM")
    parser.add_argument("--images", type=int, default=1, help="images per detect() call")
    parser.add_argument("--batch", type=int, default=None,
                        help="IMAGES_PER_GPU (default: --images, as matterport needed)")
    parser.add_argument("--classes", type=int, default=None,
                        help="NUM_CLASSES (default 2, 81 for resnet101 as COCO)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights", default=None, help="optional weights file (by name)")
    args = parser.parse_args()
    if args.size % 64:
        parser.error(f"--size must be a multiple of 64, got {args.size}")
    if args.images < 1 or args.repeats < 1:
        parser.error("--images and --repeats must be >= 1")
    return args


def _seconds(fn, repeats: int) -> tuple[float, float]:
    """(median, min) wall time of `fn`; the min is the figure least hurt by other load."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    args = _parse()
    batch = args.batch or args.images
    classes = args.classes or (81 if args.backbone == "resnet101" else 2)

    class BenchConfig(Config):
        NAME = "bench"
        IMAGES_PER_GPU = batch
        NUM_CLASSES = classes
        BACKBONE = args.backbone
        IMAGE_MIN_DIM = args.size
        IMAGE_MAX_DIM = args.size

    config = BenchConfig()
    start = time.perf_counter()
    model = MaskRCNN("inference", config, tempfile.mkdtemp(prefix="bench_inference_"))
    build_s = time.perf_counter() - start
    if args.weights:
        model.load_weights(args.weights, by_name=True)

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
              for _ in range(args.images)]
    molded, metas, _ = model.mold_inputs((images * batch)[:batch])
    anchors = model.get_anchors(molded.shape[1:])
    inputs = [molded.astype(np.float32), metas.astype(np.float32),
              np.broadcast_to(anchors, (batch,) + anchors.shape)]

    start = time.perf_counter()
    model.keras_model.predict_on_batch(inputs)
    first_s = time.perf_counter() - start
    step_s, step_min_s = _seconds(lambda: model.keras_model.predict_on_batch(inputs),
                                  args.repeats)
    model.detect(images)  # a partial last batch compiles nothing new, but warm the caches
    detect_s, detect_min_s = _seconds(lambda: model.detect(images), args.repeats)

    print(json.dumps({
        "backend": keras.backend.backend(),
        "backbone": args.backbone,
        "image_size": args.size,
        "num_classes": classes,
        "batch_size": batch,
        "images": args.images,
        "weights": os.path.basename(args.weights) if args.weights else "random",
        "build_s": round(build_s, 3),
        "compile_s": round(first_s - step_s, 3),
        "step_s": round(step_s, 4),
        "step_min_s": round(step_min_s, 4),
        "detect_s": round(detect_s, 4),
        "detect_min_s": round(detect_min_s, 4),
        "detect_images_per_s": round(args.images / detect_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
