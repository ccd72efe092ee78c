"""datasets/__init__.py and datasets/samples.py: the U-Net's view of the adapters."""
from __future__ import annotations

import numpy as np
import pytest

from datasets import ADAPTERS, BinarySample, binary_samples
from datasets.lungs import LungsDataset


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown dataset 'coco'; expected one of"):
        binary_samples("coco", "/nowhere")
    assert ADAPTERS == ("lungs", "isic", "siim")


def test_same_split_and_files_as_the_mask_rcnn_adapter(shenzhen_root):
    root, _ = shenzhen_root
    for subset in ("train", "val", "all"):
        dataset = LungsDataset()
        dataset.load_lungs(root, subset)
        samples = binary_samples("lungs", root, subset, threshold=128)
        assert [s.id for s in samples] == [i["id"] for i in dataset.image_info]
        assert [s.path for s in samples] == [i["path"] for i in dataset.image_info]
        assert all(isinstance(s, BinarySample) for s in samples)


def test_options_reach_the_loader(shenzhen_root):
    root, _ = shenzhen_root
    with pytest.raises(TypeError, match="mask_threshold"):
        binary_samples("lungs", root, "train", mask_threshold=3)
    strict = binary_samples("lungs", root, "all", threshold=256)  # no pixel reaches it
    with pytest.raises(ValueError, match="empty lung mask"):
        strict[0].load_mask()
    loose = binary_samples("lungs", root, "all", threshold=1)[0].load_mask()
    assert loose.sum() > binary_samples("lungs", root, "all")[0].load_mask().sum()
    assert loose.dtype == np.bool_
