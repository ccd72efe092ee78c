"""datasets/siim.py: DICOM folders, both CSV spellings, instances per RLE row."""
from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pydicom
import pytest

from datasets import binary_samples, synthetic
from datasets.siim import SIIMDataset, read_rle_csv


def load(root, subset="all", **options) -> SIIMDataset:
    dataset = SIIMDataset()
    dataset.load_siim(root, subset, **options)
    dataset.prepare()
    return dataset


def ids(dataset):
    return [info["id"] for info in dataset.image_info]


def assert_matches(dataset, written, tolerance=0):
    truth = {r.id: r for r in written}
    assert sorted(i["id"] for i in dataset.image_info) == sorted(truth)
    for image_id in dataset.image_ids:
        record = truth[dataset.image_info[image_id]["id"]]
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.shape == record.masks.shape and masks.dtype == bool
        np.testing.assert_array_equal(masks, record.masks)
        np.testing.assert_array_equal(class_ids, np.ones(record.masks.shape[-1], np.int32))
        image = dataset.load_image(image_id)
        assert image.shape == record.masks.shape[:2] + (3,) and image.dtype == np.uint8
        assert np.abs(image[..., 0].astype(int) - record.image).max() <= tolerance
        np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_kaggle_nested_layout(siim_root):
    root, written = siim_root
    dataset = load(root)
    assert dataset.class_names == ["BG", "pneumothorax"]
    assert [r.masks.shape[-1] for r in written].count(2) == 2  # several rows = instances
    assert_matches(dataset, written)
    info = dataset.image_info[0]
    assert info["path"] == os.path.join(
        root, "dicom-images-train", info["id"].replace(".4.", ".2.", 1),
        info["id"].replace(".4.", ".3.", 1), info["id"] + ".dcm")
    with open(os.path.join(root, "train-rle.csv"), encoding="utf-8") as file:
        assert file.readline() == "ImageId, EncodedPixels\n"


def test_sample_csv_flat_jpeg(tmp_path):
    written = synthetic.write_siim(str(tmp_path), n=6, nested=False, csv_style="sample",
                                   compressed="jpeg")
    raw = (tmp_path / "train-rle-sample.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and not raw.endswith(b"\n") and b", " in raw
    assert_matches(load(str(tmp_path)), written, tolerance=12)  # JPEG of a noisy image


def test_12_bit_jpeg2000_monochrome1(tmp_path):
    written = synthetic.write_siim(str(tmp_path), n=3, compressed="jpeg2000", bits=12,
                                   photometric="MONOCHROME1")
    dataset = load(str(tmp_path))
    for image_id, record in zip(dataset.image_ids, written):
        bright = record.image.astype(float)
        expected = np.round((bright - bright.min()) / np.ptp(bright) * 255)
        np.testing.assert_array_equal(dataset.load_image(image_id)[..., 0], expected)


def test_minus_one_has_no_instances_and_an_all_false_binary_mask(siim_root):
    root, written = siim_root
    negatives = {r.id for r in written if r.masks.shape[-1] == 0}
    samples = [s for s in binary_samples("siim", root, "all") if s.id in negatives]
    assert len(samples) == 2
    for sample in samples:
        mask = sample.load_mask()
        assert mask.shape == (64, 64) and mask.dtype == bool and not mask.any()


def test_binary_samples_are_the_union_of_the_rows(siim_root):
    root, written = siim_root
    truth = {r.id: r for r in written}
    train = binary_samples("siim", root, "train")
    val = binary_samples("siim", root, "val")
    assert len(train) == 5 and len(val) == 1
    for sample in train + val:
        np.testing.assert_array_equal(sample.load_mask(), truth[sample.id].masks.any(-1))


def test_val_split_keeps_each_patient_together(tmp_path):
    written = synthetic.write_siim(str(tmp_path), n=12, nested=False)
    for index, record in enumerate(written):  # two X-rays per patient
        ds = pydicom.dcmread(record.path)
        ds.PatientID = f"patient-{index // 2}"
        ds.save_as(record.path)
    patient = {r.id: f"patient-{i // 2}" for i, r in enumerate(written)}
    train, val = (ids(load(str(tmp_path), s)) for s in ("train", "val"))
    assert len(val) == 2 and patient[val[0]] == patient[val[1]]  # 6 patients / 11 -> 1
    assert {patient[i] for i in train}.isdisjoint({patient[i] for i in val})
    assert sorted(train + val) == sorted(patient)
    assert len(ids(load(str(tmp_path), "val", split_by="image"))) == 1  # 12 images / 11
    with pytest.raises(ValueError, match="split_by"):
        load(str(tmp_path), split_by="study")


def test_unlabelled_dicoms_and_orphan_rows_are_skipped_and_counted(siim_root, caplog):
    root, written = siim_root
    extra = os.path.join(root, "dicom-images-train", "x", "1.2.3.999.dcm")
    os.makedirs(os.path.dirname(extra))
    shutil.copy(written[0].path, extra)
    with open(os.path.join(root, "train-rle.csv"), "a", encoding="utf-8") as file:
        file.write("1.2.3.404, 5 5\n1.2.3.405,-1\n")
    with caplog.at_level(logging.INFO, logger="datasets.siim"):
        dataset = load(root)
    assert dataset.num_images == 6
    assert "skipped 1 images without a CSV row" in caplog.text
    assert "skipped 2 CSV ImageIds without an image file" in caplog.text


def test_csv_quirks(tmp_path):
    path = tmp_path / "train-rle.csv"
    path.write_text("ImageId, EncodedPixels\r\na, 1 2 3 4\r\na, 1 2 3 4\r\na, 9 1\r\n"
                    "b,-1\r\nc, -1\r\n\r\n", encoding="utf-8")
    assert read_rle_csv(str(path)) == {"a": ["1 2 3 4", "9 1"], "b": [], "c": []}
    path.write_text(" EncodedPixels ,ImageId\nd,-1\n", encoding="utf-8")  # odd order: ok
    with pytest.raises(ValueError, match="line 2"):
        read_rle_csv(str(path))
    path.write_text("EncodedPixels,ImageId\n3 4,d\n", encoding="utf-8")
    assert read_rle_csv(str(path)) == {"d": ["3 4"]}
    path.write_text("\ufeffe, 1 2", encoding="utf-8")  # BOM, no header, no newline
    assert read_rle_csv(str(path)) == {"e": ["1 2"]}


def test_minus_one_beside_rle_rows_is_ignored_with_a_warning(tmp_path, caplog):
    path = tmp_path / "train-rle.csv"
    path.write_text("ImageId,EncodedPixels\na,-1\na, 1 2\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="datasets.siim"):
        assert read_rle_csv(str(path)) == {"a": ["1 2"]}
    assert "both '-1' and RLE rows" in caplog.text


@pytest.mark.parametrize("text, problem", [
    ("id,mask\na,-1\n", r"unknown CSV columns \['id', 'mask'\]"),
    ("ImageId,EncodedPixels,Extra\na,-1,x\n", "unknown CSV columns"),
    ("ImageId,EncodedPixels\na,-1,x\n", "line 2: expected 2 fields"),
    ("ImageId,EncodedPixels\n,5 5\n", "line 2"),
    ("", "empty CSV"),
])
def test_bad_csv_is_rejected_naming_the_file(tmp_path, text, problem):
    path = tmp_path / "train-rle.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=problem) as error:
        read_rle_csv(str(path))
    assert "train-rle.csv" in str(error.value)


def test_malformed_rle_fails_when_loaded_naming_the_image(siim_root):
    root, written = siim_root
    csv_path = os.path.join(root, "train-rle.csv")
    text = open(csv_path, encoding="utf-8").read()
    target = written[0].id
    lines = [f"{target}, 4000 200" if line.startswith(target) else line
             for line in text.splitlines()]
    open(csv_path, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    dataset = load(root)
    index = [i["id"] for i in dataset.image_info].index(target)
    with pytest.raises(ValueError, match=f"ImageId {target}: .*past the 64x64 image"):
        dataset.load_mask(index)


def test_missing_pieces(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no RLE CSV"):
        load(str(tmp_path))
    (tmp_path / "train-rle.csv").write_text("ImageId,EncodedPixels\na,-1\n")
    with pytest.raises(FileNotFoundError, match="no .dcm files"):
        load(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="manifest"):
        load(str(tmp_path), png_dir=str(tmp_path))


def test_same_image_id_twice_is_an_error(siim_root):
    root, written = siim_root
    copy = os.path.join(root, "dicom-images-train", "dup", os.path.basename(written[0].path))
    os.makedirs(os.path.dirname(copy))
    shutil.copy(written[0].path, copy)
    with pytest.raises(ValueError, match=f"ImageId {written[0].id} appears twice"):
        load(root)


@pytest.mark.shared_data
def test_real_sample_set(shared_data):
    folder = shared_data / "siim" / "sample"
    dataset = load(str(folder))  # header-less BOM CSV + dicom/ folder
    on_disk = {p[:-4] for p in os.listdir(folder / "dicom") if p.endswith(".dcm")}
    assert {i["id"] for i in dataset.image_info} == on_disk
    positives = 0
    for image_id in dataset.image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.shape[:2] == (1024, 1024) and masks.shape[-1] <= 1
        if masks.shape[-1]:
            positives += 1
            area = masks.sum()
            assert 500 < area < 0.1 * masks[..., 0].size and list(class_ids) == [1]
    # The sample's PROVENANCE: 6 DICOMs, 3 with pneumothorax (one RLE row each).
    assert dataset.num_images == 6 and positives == 3
