"""datasets/preprocess_siim.py: DICOM -> PNG + manifest, resumable and idempotent."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

import datasets.preprocess_siim as pre
from datasets import synthetic
from datasets.dicom import load_dicom_image
from datasets.siim import SIIMDataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dicoms(tmp_path):
    root = tmp_path / "siim"
    written = synthetic.write_siim(str(root), n=5, compressed="jpeg")
    return root, written


def pngs(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".png"))


def test_converts_every_dicom_and_writes_a_sorted_manifest(dicoms, tmp_path):
    root, written = dicoms
    out = tmp_path / "png"
    manifest, failed = pre.preprocess(str(root / "dicom-images-train"), str(out), progress=False)
    assert failed == []
    assert pngs(out) == sorted(r.id + ".png" for r in written)
    with open(manifest, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["ImageId"] for r in rows] == sorted(r.id for r in written)
    for row, record in zip(rows, written):
        png = np.asarray(Image.open(out / row["png"]))
        np.testing.assert_array_equal(png, load_dicom_image(record.path))
        assert (row["height"], row["width"]) == ("64", "64")
        assert row["PatientID"] == record.id  # the synthetic files give each image its own
        assert os.path.join(root, "dicom-images-train", row["dicom"]) == record.path


def test_rerun_skips_done_files_and_rewrites_the_same_manifest(dicoms, tmp_path, monkeypatch):
    root, written = dicoms
    out = str(tmp_path / "png")
    manifest, _ = pre.preprocess(str(root), out, progress=False)
    first = open(manifest, "rb").read()
    decoded = []
    monkeypatch.setattr(pre, "load_dicom_image",
                        lambda path: decoded.append(path) or load_dicom_image(path))
    os.remove(os.path.join(out, written[2].id + ".png"))
    pre.preprocess(str(root), out, progress=False)
    assert decoded == [written[2].path]  # only the missing PNG is decoded again
    assert open(manifest, "rb").read() == first


def test_killed_run_leaves_no_half_written_png(dicoms, tmp_path, monkeypatch):
    root, written = dicoms
    out = tmp_path / "png"
    real_fromarray = Image.fromarray

    class Killed(KeyboardInterrupt):
        pass

    class HalfWriter:
        def __init__(self, array):
            self.image = real_fromarray(array)

        def save(self, path, format):
            if len(pngs(out)) == 2:  # the third file: write half of it, then die
                self.image.save(path, format=format)
                data = open(path, "rb").read()
                open(path, "wb").write(data[: len(data) // 2])
                raise Killed
            self.image.save(path, format=format)

    monkeypatch.setattr(pre.Image, "fromarray", HalfWriter)
    with pytest.raises(Killed):
        pre.preprocess(str(root), str(out), progress=False)
    assert pngs(out) == sorted(r.id + ".png" for r in written)[:2]
    assert not os.path.exists(out / pre.MANIFEST)
    monkeypatch.undo()
    manifest, failed = pre.preprocess(str(root), str(out), progress=False)
    assert failed == [] and len(pngs(out)) == 5
    assert os.listdir(out) == [n for n in os.listdir(out) if not n.endswith(".tmp")]
    for record in written:
        png = np.asarray(Image.open(out / (record.id + ".png")))
        np.testing.assert_array_equal(png, load_dicom_image(record.path))


def test_a_bad_dicom_is_reported_and_the_rest_converted(dicoms, tmp_path):
    root, written = dicoms
    with open(written[1].path, "r+b") as file:
        file.truncate(300)
    manifest, failed = pre.preprocess(str(root), str(tmp_path / "png"), progress=False)
    assert failed == [written[1].id]
    assert len(pngs(tmp_path / "png")) == 4


def test_png_and_dicom_routes_give_the_same_split(tmp_path):
    root = tmp_path / "siim"
    written = synthetic.write_siim(str(root), n=12)
    for index, record in enumerate(written):  # three X-rays per patient
        ds = pydicom.dcmread(record.path)
        ds.PatientID = f"patient-{index // 3}"
        ds.save_as(record.path)
    out = str(tmp_path / "png")
    pre.preprocess(str(root), out, progress=False)
    for subset in ("train", "val"):
        from_png, from_dicom = SIIMDataset(), SIIMDataset()
        from_png.load_siim(str(root), subset, png_dir=out)
        from_dicom.load_siim(str(root), subset)
        assert ([i["id"] for i in from_png.image_info]
                == [i["id"] for i in from_dicom.image_info])
    assert len(from_png.image_info) == 3  # val: one patient of four


def test_siim_dataset_reads_the_pngs_with_the_same_masks(dicoms, tmp_path):
    root, written = dicoms
    out = str(tmp_path / "png")
    pre.preprocess(str(root), out, progress=False)
    from_png, from_dicom = SIIMDataset(), SIIMDataset()
    from_png.load_siim(str(root), "all", png_dir=out)
    from_dicom.load_siim(str(root), "all")
    assert [i["id"] for i in from_png.image_info] == [i["id"] for i in from_dicom.image_info]
    for index, info in enumerate(from_png.image_info):
        assert info["path"].endswith(".png")
        np.testing.assert_array_equal(from_png.load_image(index), from_dicom.load_image(index))
        np.testing.assert_array_equal(from_png.load_mask(index)[0],
                                      from_dicom.load_mask(index)[0])


@pytest.mark.parametrize("command", [["-m", "datasets.siim", "preprocess"],
                                     ["datasets/preprocess_siim.py"]])
def test_command_lines(dicoms, tmp_path, command):
    root, written = dicoms
    out = tmp_path / "png"
    result = subprocess.run(
        [sys.executable, *command, "--dicom", str(root), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "DICOM -> PNG" in result.stderr  # the progress bar
    assert len(pngs(out)) == len(written) and (out / pre.MANIFEST).exists()
