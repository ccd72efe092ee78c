"""Matterport's seeded R50 model (README sections 4 and 5), shared by the model tests.

Import the fixtures into a test module: ``from tests.mrcnn.golden import detect_cases,
golden_h5, golden_model``. The weights file is rebuilt once per session (seconds).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mrcnn.config import Config
from mrcnn.model import MaskRCNN


class GoldenConfig(Config):
    """The config of detect_cases.npz (detect_cases_manifest.json config_overrides)."""

    NAME = "golden_r50"
    IMAGES_PER_GPU = 3
    NUM_CLASSES = 2
    BACKBONE = "resnet50"
    IMAGE_MIN_DIM = 256
    IMAGE_MAX_DIM = 256


@pytest.fixture(scope="session")
def golden_h5(reference_dir, tmp_path_factory):
    script = reference_dir.parent / "make_golden_h5.py"
    out = tmp_path_factory.mktemp("golden") / "golden_r50.h5"
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def golden_model(golden_h5, tmp_path_factory):
    model = MaskRCNN("inference", GoldenConfig(), str(tmp_path_factory.mktemp("logs")))
    model.load_weights(str(golden_h5), by_name=True)
    return model


@pytest.fixture(scope="session")
def detect_cases(reference_dir) -> dict:
    """detect_cases.npz: inputs, intermediate tensors and outputs of matterport's detect."""
    with np.load(reference_dir / "detect_cases.npz") as npz:
        return {key: npz[key] for key in npz.files}
