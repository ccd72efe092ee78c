"""datasets/synthetic.py: deterministic writers of the true on-disk formats."""
from __future__ import annotations

import filecmp
import os

import numpy as np
import pydicom
import pytest

from datasets import synthetic


def tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


@pytest.mark.parametrize("write", [
    lambda root, seed: synthetic.write_lungs(root, n=3, size=(32, 40), seed=seed),
    lambda root, seed: synthetic.write_isic(root, n=3, size=(32, 40), seed=seed),
    lambda root, seed: synthetic.write_siim(root, n=3, size=(32, 40), seed=seed),
])
def test_same_seed_same_bytes(tmp_path, write):
    write(str(tmp_path / "a"), 0)
    write(str(tmp_path / "b"), 0)
    write(str(tmp_path / "c"), 1)
    files = tree(tmp_path / "a")
    assert files and files == tree(tmp_path / "b")
    same = [filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False) for f in files]
    assert all(same)
    other = [filecmp.cmp(tmp_path / "a" / f, tmp_path / "c" / f, shallow=False)
             for f in files if (tmp_path / "c" / f).exists()]
    assert not all(other)


def test_lung_records_are_two_lungs_left_to_right(tmp_path):
    records = synthetic.write_lungs(str(tmp_path), n=2, size=(64, 80), unlabelled=3)
    assert len(records) == 2 and len(os.listdir(tmp_path / "CXR_png")) == 5
    for record in records:
        assert record.masks.shape == (64, 80, 2)
        xs = [np.nonzero(record.masks[..., k])[1].mean() for k in range(2)]
        assert xs[0] < 40 < xs[1]
        assert not (record.masks[..., 0] & record.masks[..., 1]).any()


def test_siim_dicoms_carry_the_requested_format(tmp_path):
    records = synthetic.write_siim(str(tmp_path), n=3, compressed="rle", bits=12,
                                   photometric="MONOCHROME1", window=(2048, 4096))
    ds = pydicom.dcmread(records[0].path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    assert (ds.BitsStored, ds.PhotometricInterpretation, ds.Modality) == (12, "MONOCHROME1", "CR")
    assert float(ds.WindowCenter) == 2048 and ds.SOPInstanceUID == records[0].id
    np.testing.assert_array_equal(ds.pixel_array, 4095 - records[0].image)
    assert [r.masks.shape[-1] for r in records] == [0, 1, 2]


def test_bad_generator_options(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        synthetic.write_lungs(str(tmp_path), layout="nih")
    with pytest.raises(ValueError, match="8-bit"):
        synthetic.write_siim(str(tmp_path), compressed="jpeg", bits=12)
    with pytest.raises(ValueError, match="csv_style"):
        synthetic.write_siim(str(tmp_path), csv_style="excel")
