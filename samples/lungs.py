"""Mask R-CNN on chest X-ray lungs (Shenzhen / Montgomery / plain folders): one
instance per lung.

    python samples/lungs.py train --dataset=/data/lungs --weights=coco
    python samples/lungs.py evaluate --dataset=/data/lungs --weights=last --subset=val
    python samples/lungs.py detect --weights=last --image=CHNCXR_0001_0.png
    python samples/lungs.py splash --weights=last --dataset=/data/lungs --limit=4

The default schedule is the lungs seed's: the heads for 1 epoch at lr 1e-3, then all
layers up to epoch 3 at lr 1e-4, on 128x128 images. `--help` lists every option.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.lungs import LungsDataset  # noqa: E402
from mrcnn.config import Config  # noqa: E402
from samples._cli import Phase, Sample, main  # noqa: E402
from samples.unet import default_augmentation  # noqa: E402


class LungsConfig(Config):
    """128x128 X-rays, background + lung, two instances per image."""

    NAME = "lungs"
    NUM_CLASSES = 1 + 1
    BACKBONE = "resnet50"
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    # A lung fills a third to a half of the image side: 8..128-pixel anchors cover it
    # and its parts at every FPN level.
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    POST_NMS_ROIS_TRAINING = 500
    POST_NMS_ROIS_INFERENCE = 250
    TRAIN_ROIS_PER_IMAGE = 64
    MAX_GT_INSTANCES = 4
    DETECTION_MAX_INSTANCES = 10
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 10


SAMPLE = Sample(
    name="lungs",
    description="Mask R-CNN: lung instances in chest X-rays.",
    config=LungsConfig,
    dataset=LungsDataset,
    load=LungsDataset.load_lungs,
    schedule=(Phase("heads", 1, 1e-3), Phase("all", 3, 1e-4)),
    class_names=("BG", "lung"),
    augmentation=functools.partial(default_augmentation, "lungs"),
)

if __name__ == "__main__":
    main(SAMPLE)
