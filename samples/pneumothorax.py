"""Mask R-CNN on SIIM-ACR pneumothorax: DICOM X-rays, one instance per RLE row.

    python samples/pneumothorax.py train --dataset=/data/siim --weights=coco
    python samples/pneumothorax.py evaluate --dataset=/data/siim --weights=last
    python samples/pneumothorax.py detect --weights=last --image=1.2.276.0.7230010.3.1.4.8323329.1000.dcm

Most SIIM X-rays have no pneumothorax: the evaluation scores an empty image predicted
empty as 1 (the competition's rule) and writes a Kaggle submission CSV beside the report.
The default schedule trains the heads to epoch 2 at lr 1e-3, then all layers to epoch 12
at lr 1e-4. Preprocess the DICOMs to PNG once (`python -m datasets.siim preprocess`) and
pass `--option png_dir=DIR` to train faster. `--help` lists every option.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.dicom import load_dicom_image  # noqa: E402
from datasets.siim import SIIMDataset  # noqa: E402
from mrcnn.config import Config  # noqa: E402
from mrcnn.dataset import read_image  # noqa: E402
from samples._cli import Phase, Sample, main  # noqa: E402
from samples.unet import default_augmentation  # noqa: E402


class PneumothoraxConfig(Config):
    """1024-pixel DICOMs molded to 512x512, background + pneumothorax."""

    NAME = "pneumothorax"
    NUM_CLASSES = 1 + 1
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 512
    IMAGE_MAX_DIM = 512
    MAX_GT_INSTANCES = 10
    TRAIN_ROIS_PER_IMAGE = 100
    DETECTION_MAX_INSTANCES = 10
    STEPS_PER_EPOCH = 500
    VALIDATION_STEPS = 25


def read_xray(path: str) -> np.ndarray:
    """[H, W, 3] uint8 from a DICOM (windowed, grey in each channel) or an image file."""
    if path.lower().endswith(".dcm"):
        return np.repeat(load_dicom_image(path)[..., None], 3, axis=-1)
    return read_image(path)


SAMPLE = Sample(
    name="pneumothorax",
    description="Mask R-CNN: pneumothorax in SIIM-ACR chest X-rays (DICOM + RLE).",
    config=PneumothoraxConfig,
    dataset=SIIMDataset,
    load=SIIMDataset.load_siim,
    schedule=(Phase("heads", 2, 1e-3), Phase("all", 12, 1e-4)),
    class_names=("BG", "pneumothorax"),
    augmentation=functools.partial(default_augmentation, "siim"),
    read_image=read_xray,
    siim_submission=True,
)

if __name__ == "__main__":
    main(SAMPLE)
