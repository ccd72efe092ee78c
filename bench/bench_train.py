"""MaskRCNN.train() end to end: steps/s and images/s of the whole loop; prints JSON.

    python bench/bench_train.py [--backbone resnet50] [--size 256] [--batch 2]
        [--steps 5] [--epochs 3] [--layers heads] [--workers 2] [--out result.json]

Runs ``train()`` on synthetic 3-instance images (bench_data.EllipseDataset) for
``--epochs`` epochs of ``--steps`` steps: data pipeline (MaskRCNNSequence with worker
threads), XLA-compiled step, per-epoch HDF5 checkpoint and TensorBoard logs, as users
run it. The first epoch (compilation included) is reported apart; the steady figure is
the median, and the minimum, of the other epochs' wall times divided by their steps.
One step alone (train_on_batch, no pipeline) is in ``bench/run.py --what train``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import keras

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import timing  # noqa: E402  (bench/ is the script's directory)
from bench_data import EllipseDataset  # noqa: E402

from mrcnn import model as modellib  # noqa: E402
from mrcnn.config import Config  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet101"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2, help="IMAGES_PER_GPU")
    parser.add_argument("--steps", type=int, default=5, help="STEPS_PER_EPOCH")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--layers", default="heads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2: the first epoch includes compilation")

    class BenchConfig(Config):
        NAME = "bench"
        NUM_CLASSES = 2
        BACKBONE = args.backbone
        IMAGE_MIN_DIM = args.size
        IMAGE_MAX_DIM = args.size
        IMAGES_PER_GPU = args.batch
        STEPS_PER_EPOCH = args.steps
        VALIDATION_STEPS = 0

    config = BenchConfig()
    dataset = EllipseDataset(args.size, max(4, 2 * args.batch))
    model = modellib.MaskRCNN("training", config, tempfile.mkdtemp(prefix="bench_train_"))
    timer = EpochTimer()
    model.train(dataset, None, config.LEARNING_RATE, epochs=args.epochs, layers=args.layers,
                custom_callbacks=[timer], workers=args.workers, seed=0, verbose=0)
    steady = [s / args.steps for s in timer.seconds[1:]]
    step_s = statistics.median(steady)
    result = {
        "bench": "train", "backend": keras.backend.backend(), "backbone": args.backbone,
        "size": args.size, "batch": args.batch, "layers": args.layers,
        "steps_per_epoch": args.steps, "workers": args.workers,
        "first_epoch_s": round(timer.seconds[0], 3),
        "step_s": round(step_s, 4), "best_step_s": round(min(steady), 4),
        "steps_per_s": round(1 / step_s, 3),
        "images_per_s": round(args.batch / step_s, 3),
        "environment": timing.environment(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
