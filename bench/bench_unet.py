"""U-Net speed: training and inference images/s on random data; prints one JSON line.

    python bench/bench_unet.py                       # 512x512x3, VGG16 widths, batch 4
    python bench/bench_unet.py --size 256 --base-filters 16 --steps 5
    python bench/bench_unet.py --dtype-policy mixed_bfloat16
    KERAS_BACKEND=jax python bench/bench_unet.py

The first (compiling) step of each phase is excluded from the timings.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mrcnn.dtype_policy import NAMED_POLICIES  # noqa: E402
from unet.model import UNet  # noqa: E402


def _timed(step, n_steps: int) -> float:
    step()  # compile / warm up
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="input height = width")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--base-filters", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per phase")
    parser.add_argument("--dtype-policy", default="float32", choices=NAMED_POLICIES)
    args = parser.parse_args(argv)

    model = UNet(base_filters=args.base_filters, dtype_policy=args.dtype_policy).get_model(
        (args.size, args.size, args.channels))
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, args.size, args.size, args.channels), np.float32)
    y = (rng.random((args.batch_size, args.size, args.size, 1)) < 0.3).astype(np.float32)

    train_s = _timed(lambda: model.train_on_batch(x, y), args.steps)
    infer_s = _timed(lambda: np.asarray(model.predict_on_batch(x)), args.steps)
    images = args.steps * args.batch_size
    result = {
        "benchmark": "unet", "backend": keras.backend.backend(),
        "input": [args.size, args.size, args.channels], "base_filters": args.base_filters,
        "dtype_policy": args.dtype_policy,
        "params": model.count_params(), "batch_size": args.batch_size, "steps": args.steps,
        "train_images_per_s": images / train_s, "inference_images_per_s": images / infer_s,
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
