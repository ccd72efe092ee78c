"""Mask R-CNN on ISIC 2018 dermoscopy: one "lesion" instance per image.

    python samples/isic.py train --dataset=/data/isic2018 --weights=coco
    python samples/isic.py evaluate --dataset=/data/isic2018 --weights=last --subset=test
    python samples/isic.py detect --weights=last --image=ISIC_0000000.jpg

The default schedule is the ISIC seed's: the heads for 5 epochs at lr 1e-3, then ResNet
stage 3 and up to epoch 30 at lr 1e-4. The evaluation reports the ISIC 2018 score (the
mean thresholded Jaccard) and the max IoU per image. `--help` lists every option.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.isic import ISICDataset  # noqa: E402
from mrcnn.config import Config  # noqa: E402
from samples._cli import Phase, Sample, main  # noqa: E402
from samples.unet import default_augmentation  # noqa: E402


class ISICConfig(Config):
    """512x512 dermoscopy, background + lesion; COCO's ResNet-101 backbone."""

    NAME = "isic"
    NUM_CLASSES = 1 + 1
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 512
    IMAGE_MAX_DIM = 512
    MAX_GT_INSTANCES = 4
    TRAIN_ROIS_PER_IMAGE = 100
    DETECTION_MAX_INSTANCES = 10
    STEPS_PER_EPOCH = 500
    VALIDATION_STEPS = 25


SAMPLE = Sample(
    name="isic",
    description="Mask R-CNN: skin lesions in ISIC dermoscopy images.",
    config=ISICConfig,
    dataset=ISICDataset,
    load=ISICDataset.load_isic,
    schedule=(Phase("heads", 5, 1e-3), Phase("3+", 30, 1e-4)),
    class_names=("BG", "lesion"),
    augmentation=functools.partial(default_augmentation, "isic"),
)

if __name__ == "__main__":
    main(SAMPLE)
