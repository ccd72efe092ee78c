"""datasets/lungs.py: Shenzhen (Kaggle), Montgomery and plain lung layouts."""
from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from datasets import binary_samples, synthetic
from datasets.lungs import LungsDataset, lung_instances, patient_of
from datasets.masks import read_gray


def load(root, subset="all", **options) -> LungsDataset:
    dataset = LungsDataset()
    dataset.load_lungs(root, subset, **options)
    dataset.prepare()
    return dataset


def assert_matches(dataset, written):
    truth = {record.id: record for record in written}
    assert sorted(info["id"] for info in dataset.image_info) == sorted(truth)
    for image_id in dataset.image_ids:
        record = truth[dataset.image_info[image_id]["id"]]
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.dtype == bool and masks.shape == record.masks.shape
        np.testing.assert_array_equal(masks, record.masks)
        np.testing.assert_array_equal(class_ids, np.ones(2, np.int32))
        image = dataset.load_image(image_id)
        assert image.shape == record.masks.shape[:2] + (3,) and image.dtype == np.uint8


def test_shenzhen_layout_skips_unmasked_xrays_with_a_count(shenzhen_root, caplog):
    root, written = shenzhen_root
    with caplog.at_level(logging.INFO, logger="datasets.lungs"):
        dataset = load(root)
    assert "skipped 2 of 10 X-rays" in caplog.text
    assert dataset.class_names == ["BG", "lung"]
    assert_matches(dataset, written)
    info = dataset.image_info[0]
    assert info["id"] == "CHNCXR_0001_0" and info["path"].endswith("CXR_png/CHNCXR_0001_0.png")
    assert dataset.image_reference(0) == info["path"]


def test_masks_on_disk_are_anti_aliased_and_thresholded_at_128(shenzhen_root):
    root, written = shenzhen_root
    grey = read_gray(os.path.join(root, "masks", "CHNCXR_0001_0_mask.png"))
    edge = (grey > 0) & (grey < 255)
    assert edge.sum() > 20  # grey edges, as in resized masks
    np.testing.assert_array_equal(grey >= 128, written[0].masks.any(axis=-1))


def test_kaggle_montgomery_masks_keep_the_image_name(shenzhen_root):
    root, written = shenzhen_root
    masks = os.path.join(root, "masks")
    os.rename(os.path.join(masks, "CHNCXR_0002_1_mask.png"),
              os.path.join(masks, "CHNCXR_0002_1.png"))
    assert_matches(load(root), written)


def test_montgomery_left_and_right_mask_files(tmp_path):
    written = synthetic.write_lungs(str(tmp_path), n=4, layout="montgomery", unlabelled=1)
    assert os.path.isdir(tmp_path / "ManualMask" / "leftMask")
    dataset = load(str(tmp_path))
    assert dataset.image_info[0]["id"].startswith("MCUCXR_")
    assert_matches(dataset, written)


def test_montgomery_with_one_lung_missing_is_an_error(tmp_path):
    synthetic.write_lungs(str(tmp_path), n=3, layout="montgomery", unlabelled=0)
    missing = tmp_path / "ManualMask" / "rightMask" / "MCUCXR_0002_1.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="MCUCXR_0002_1.png"):
        load(str(tmp_path))


def test_plain_folder_with_a_name_pattern_and_jpeg_images(tmp_path):
    written = synthetic.write_lungs(str(tmp_path), n=5, layout="plain",
                                    mask_pattern="{stem}@.png", image_ext=".jpg")
    assert (tmp_path / "masks" / "CHNCXR_0001_0@.png").exists()
    assert_matches(load(str(tmp_path), mask_pattern="{stem}@.png"), written)
    # With the wrong pattern no image has a mask.
    with pytest.raises(FileNotFoundError, match="no image/mask pairs"):
        load(str(tmp_path), mask_pattern="{stem}_mask.png")


def test_train_val_split_is_10_to_1_by_patient_and_seeded(tmp_path):
    synthetic.write_lungs(str(tmp_path), n=22, size=(32, 32), unlabelled=0)
    # A second X-ray of patient 0003 must follow the first into the same subset.
    for folder, suffix in (("CXR_png", ".png"), ("masks", "_mask.png")):
        shutil.copy(tmp_path / folder / f"CHNCXR_0003_0{suffix}",
                    tmp_path / folder / f"CHNCXR_0003_1{suffix}")
    root = str(tmp_path)
    train, val = load(root, "train"), load(root, "val")
    train_ids = [i["id"] for i in train.image_info]
    val_ids = [i["id"] for i in val.image_info]
    assert len({patient_of(i) for i in val_ids}) == 2  # 22 patients / 11
    assert sorted(train_ids + val_ids) == sorted(i["id"] for i in load(root).image_info)
    assert {patient_of(i) for i in train_ids}.isdisjoint({patient_of(i) for i in val_ids})
    assert [i["id"] for i in load(root, "val").image_info] == val_ids
    assert [i["id"] for i in load(root, "val", seed=1).image_info] != val_ids
    with pytest.raises(ValueError, match="unknown subset 'test'"):
        load(root, "test")


def test_a_byte_identical_xray_under_another_name_shares_its_subset(tmp_path):
    synthetic.write_lungs(str(tmp_path), n=22, size=(32, 32), unlabelled=0)
    # Patient 0099's X-ray is patient 0005's file, traced again (another mask).
    shutil.copy(tmp_path / "CXR_png" / "CHNCXR_0005_0.png",
                tmp_path / "CXR_png" / "CHNCXR_0099_0.png")
    shutil.copy(tmp_path / "masks" / "CHNCXR_0001_0_mask.png",
                tmp_path / "masks" / "CHNCXR_0099_0_mask.png")
    for seed in range(30):
        val = {i["id"] for i in load(str(tmp_path), "val", seed=seed).image_info}
        assert ("CHNCXR_0005_0" in val) == ("CHNCXR_0099_0" in val), seed


def test_patient_of():
    assert patient_of("CHNCXR_0001_0") == patient_of("CHNCXR_0001_1") == "CHNCXR_0001"
    assert patient_of("MCUCXR_0104_1") == "MCUCXR_0104"
    assert patient_of("1-10-500-500-100") == "1-10-500-500-100"


def test_lung_instances_merges_fragments_and_drops_specks():
    mask = np.zeros((100, 100), bool)
    mask[10:90, 10:40] = True   # image-left lung
    mask[10:50, 60:90] = True   # image-right lung, cut in two ...
    mask[55:90, 62:88] = True   # ... by a marker
    mask[95, 50] = True         # one noisy pixel
    instances = lung_instances(mask, min_area=0.001)
    assert instances.shape == (100, 100, 2)
    assert instances[..., 0].sum() == 80 * 30 and instances[50, 20, 0]
    assert instances[..., 1].sum() == 40 * 30 + 35 * 26
    assert not instances[95, 50].any()
    one = lung_instances(mask[:, :45], min_area=0.001)
    assert one.shape == (100, 45, 1)
    assert lung_instances(np.zeros((8, 8), bool)).shape == (8, 8, 0)


def test_empty_mask_is_an_error_naming_the_file(shenzhen_root):
    root, _ = shenzhen_root
    path = os.path.join(root, "masks", "CHNCXR_0001_0_mask.png")
    Image.fromarray(np.full((128, 128), 100, np.uint8)).save(path)  # all below 128
    dataset = load(root)
    with pytest.raises(ValueError, match="empty lung mask.*CHNCXR_0001_0_mask.png"):
        dataset.load_mask(0)


def test_mask_size_differs_from_image(shenzhen_root):
    root, _ = shenzhen_root
    path = os.path.join(root, "masks", "CHNCXR_0001_0_mask.png")
    Image.fromarray(np.full((64, 128), 255, np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"CHNCXR_0001_0_mask.png is 64x128 .* 128x128"):
        load(root).load_mask(0)


def test_truncated_image_is_an_error_naming_the_file(shenzhen_root):
    root, _ = shenzhen_root
    path = os.path.join(root, "CXR_png", "CHNCXR_0001_0.png")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:40])
    dataset = load(root)
    with pytest.raises(ValueError, match="CHNCXR_0001_0.png"):
        dataset.load_image(0)
    with pytest.raises(ValueError, match="CHNCXR_0001_0.png"):
        dataset.load_mask(0)


def test_missing_and_unrecognised_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load(str(tmp_path / "nowhere"))
    (tmp_path / "CXR_png").mkdir()
    with pytest.raises(FileNotFoundError, match="none of the lung layouts"):
        load(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mask folder not found"):
        load(str(tmp_path), layout="shenzhen")
    with pytest.raises(ValueError, match="unknown lung layout"):
        load(str(tmp_path), layout="nih")


def test_binary_samples_are_the_union_of_the_lungs(shenzhen_root):
    root, written = shenzhen_root
    truth = {record.id: record for record in written}
    train = binary_samples("lungs", root, "train")
    val = binary_samples("lungs", root, "val")
    assert len(train) == 7 and len(val) == 1
    assert {s.id for s in train}.isdisjoint({s.id for s in val})
    for sample in train + val:
        mask = sample.load_mask()
        assert mask.dtype == bool
        np.testing.assert_array_equal(mask, truth[sample.id].masks.any(axis=-1))
        assert sample.load_image().shape == (128, 128, 3)
        assert sample.path == truth[sample.id].path


def _pairs_on_disk(folder, pattern):
    images = os.listdir(folder / "images")
    return [n for n in images
            if (folder / "masks" / pattern.format(stem=os.path.splitext(n)[0])).exists()]


@pytest.mark.shared_data
def test_real_shenzhen_sample(shared_data):
    folder = shared_data / "lungs" / "shenzhen"
    dataset = load(str(folder))  # images/ + masks/ with the Kaggle names: plain layout
    assert dataset.num_images == len(_pairs_on_disk(folder, "{stem}_mask.png")) == 6
    for image_id in dataset.image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.shape == (512, 512, 2) and list(class_ids) == [1, 1]
        left, right = masks[..., 0], masks[..., 1]
        assert np.nonzero(left)[1].mean() < 256 < np.nonzero(right)[1].mean()
        assert 0.03 < left.mean() < 0.3 and 0.03 < right.mean() < 0.3


@pytest.mark.shared_data
def test_real_openist_plain_folder(shared_data):
    folder = shared_data / "lungs" / "openist"
    dataset = load(str(folder), mask_pattern="{stem}@.png")
    assert dataset.num_images == len(_pairs_on_disk(folder, "{stem}@.png")) == 175
    for image_id in dataset.image_ids:
        masks, _ = dataset.load_mask(image_id)
        grey = read_gray(dataset.image_info[image_id]["mask_paths"][0])
        assert masks.shape == grey.shape + (2,)  # two lungs in every image
        # Only specks are dropped from the thresholded mask.
        assert (masks.any(axis=-1) != (grey >= 128)).sum() < 0.001 * grey.size


@pytest.mark.shared_data
def test_real_openist_duplicate_xray_stays_in_one_subset(shared_data):
    # 101-210 and 201-210 are one JPEG file, with two different tracings.
    folder = str(shared_data / "lungs" / "openist")
    copies = {"101-210-500-500-100", "201-210-500-500-100"}
    for seed in range(40):
        val = {i["id"] for i in load(folder, "val", mask_pattern="{stem}@.png",
                                     seed=seed).image_info}
        assert len(val) == 16 and len(val & copies) in (0, 2), seed
