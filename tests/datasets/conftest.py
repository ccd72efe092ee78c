"""Fixtures for the dataset adapters: synthetic roots in each on-disk format."""
from __future__ import annotations

import pytest

from datasets import synthetic


@pytest.fixture
def shenzhen_root(tmp_path):
    """Kaggle Shenzhen layout: 8 labelled + 2 unlabelled 128x128 X-rays."""
    root = tmp_path / "Lung Segmentation"
    return str(root), synthetic.write_lungs(str(root), n=8, layout="shenzhen")


@pytest.fixture
def isic_root(tmp_path):
    """ISIC 2018 official folders, Training + Validation, 8 images each."""
    root = tmp_path / "isic2018"
    return str(root), synthetic.write_isic(str(root), n=8, parts=("Training", "Validation"))


@pytest.fixture
def siim_root(tmp_path):
    """Kaggle SIIM layout: nested DICOMs + train-rle.csv with a header."""
    root = tmp_path / "siim"
    return str(root), synthetic.write_siim(str(root), n=6)
