"""datasets/isic.py: ISIC 2018 folders, plain folders, 2016 mask names."""
from __future__ import annotations

import logging
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from datasets import binary_samples, synthetic
from datasets.isic import ISICDataset, official_folders


def load(root, subset="all", **options) -> ISICDataset:
    dataset = ISICDataset()
    dataset.load_isic(root, subset, **options)
    dataset.prepare()
    return dataset


def ids(dataset):
    return [info["id"] for info in dataset.image_info]


def test_2018_layout_masks_and_images(isic_root):
    root, written = isic_root
    dataset = load(root)
    training = {r.id: r for r in written if r.id < "ISIC_0100000"}
    assert sorted(ids(dataset)) == sorted(training)  # seeded split: Training folder only
    assert dataset.class_names == ["BG", "lesion"]
    for image_id in dataset.image_ids:
        record = training[dataset.image_info[image_id]["id"]]
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.shape == (96, 128, 1) and masks.dtype == bool
        np.testing.assert_array_equal(masks, record.masks)
        assert list(class_ids) == [1]
        image = dataset.load_image(image_id)
        assert image.shape == (96, 128, 3)
        assert np.abs(image.astype(int) - record.image).mean() < 4  # JPEG quality 95


def test_seeded_split_75_25_then_75_25(isic_root):
    root, _ = isic_root
    train, val, test = (ids(load(root, s)) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (4, 2, 2)
    assert sorted(train + val + test) == sorted(ids(load(root)))
    assert ids(load(root, "test")) == test
    assert ids(load(root, "test", seed=5)) != test or ids(load(root, "val", seed=5)) != val


def test_official_split_uses_the_official_folders(isic_root):
    root, written = isic_root
    assert ids(load(root, "train", split="official")) == [f"ISIC_{i:07d}" for i in range(8)]
    assert ids(load(root, "val", split="official")) == [f"ISIC_{100000 + i:07d}" for i in range(8)]
    assert len(ids(load(root, "all", split="official"))) == 16
    with pytest.raises(FileNotFoundError, match="ISIC2018_Task1-2_Test_Input"):
        load(root, "test", split="official")


def test_plain_layout_with_2016_mask_names(tmp_path):
    written = synthetic.write_isic(str(tmp_path), n=4, layout="plain",
                                   spelling="_Segmentation.png")
    assert (tmp_path / "masks" / "ISIC_0000000_Segmentation.png").exists()
    dataset = load(str(tmp_path))
    assert ids(dataset) == [r.id for r in written]
    for image_id, record in zip(dataset.image_ids, written):
        np.testing.assert_array_equal(dataset.load_mask(image_id)[0], record.masks)
    with pytest.raises(ValueError, match="official"):
        load(str(tmp_path), split="official")


def test_image_without_mask_is_an_error_naming_it(isic_root):
    root, _ = isic_root
    _, mask_dir = official_folders(root, "Training")
    os.remove(os.path.join(mask_dir, "ISIC_0000003_segmentation.png"))
    with pytest.raises(FileNotFoundError, match=r"ISIC_0000003\.jpg has no mask"):
        load(root)


def test_masks_are_binarised_at_255(isic_root):
    root, _ = isic_root
    _, mask_dir = official_folders(root, "Training")
    mask = np.zeros((96, 128), np.uint8)
    mask[10:20, 10:20] = 254  # not lesion by the challenge's definition
    mask[30:40, 30:50] = 255
    Image.fromarray(mask).save(os.path.join(mask_dir, "ISIC_0000000_segmentation.png"))
    masks, _ = load(root).load_mask(0)
    assert masks.sum() == 200 and masks[35, 40, 0] and not masks[15, 15, 0]


def test_empty_mask_fails_on_load_or_is_skipped_when_validating(isic_root, caplog):
    root, _ = isic_root
    _, mask_dir = official_folders(root, "Training")
    path = os.path.join(mask_dir, "ISIC_0000000_segmentation.png")
    Image.fromarray(np.zeros((96, 128), np.uint8)).save(path)
    with pytest.raises(ValueError, match="empty lesion mask .*ISIC_0000000_segmentation"):
        load(root).load_mask(0)
    with caplog.at_level(logging.WARNING, logger="datasets.isic"):
        dataset = load(root, validate=True)
    assert "ISIC_0000000" not in ids(dataset) and len(ids(dataset)) == 7
    assert "skipping ISIC_0000000: empty lesion mask" in caplog.text


def test_mask_size_differs_from_image(isic_root):
    root, _ = isic_root
    _, mask_dir = official_folders(root, "Training")
    path = os.path.join(mask_dir, "ISIC_0000001_segmentation.png")
    Image.fromarray(np.full((100, 128), 255, np.uint8)).save(path)
    dataset = load(root)
    with pytest.raises(ValueError, match=r"ISIC_0000001_segmentation.png is 100x128"):
        dataset.load_mask(1)
    assert "ISIC_0000001" not in ids(load(root, validate=True))


def test_unreadable_image_names_the_file(isic_root):
    root, _ = isic_root
    image_dir, _ = official_folders(root, "Training")
    path = os.path.join(image_dir, "ISIC_0000002.jpg")
    open(path, "wb").write(b"not a jpeg")
    with pytest.raises(ValueError, match="ISIC_0000002.jpg"):
        load(root).load_image(2)


def test_shrink_large_reduces_images_over_700_to_a_quarter(tmp_path):
    written = synthetic.write_isic(str(tmp_path), n=1, size=(720, 760), layout="plain")
    synthetic.write_isic(str(tmp_path / "small"), n=1, size=(700, 900), layout="plain")
    big = load(str(tmp_path), shrink_large=True)
    image, (masks, _) = big.load_image(0), big.load_mask(0)
    assert image.shape == (180, 190, 3) and masks.shape == (180, 190, 1)
    reduced = np.asarray(Image.fromarray(written[0].masks[..., 0]).resize((190, 180),
                                                                           Image.NEAREST))
    assert (masks[..., 0] != reduced).mean() < 0.02  # nearest neighbour of the truth
    # ... sampled at pixel centres, so the lesion stays where the shrunk image shows it.
    area = cv2.resize(written[0].masks[..., 0].astype(np.float32), (190, 180),
                      interpolation=cv2.INTER_AREA)
    ys, xs = np.indices(area.shape)
    shown = np.array([(ys * area).sum(), (xs * area).sum()]) / area.sum()
    kept = np.argwhere(masks[..., 0]).mean(axis=0)
    assert np.abs(kept - shown).max() < 0.2  # 1/8 px: a 4x4 block has no centre pixel
    assert load(str(tmp_path)).load_image(0).shape == (720, 760, 3)  # option off
    small = load(str(tmp_path / "small"), shrink_large=True)  # 700 is not over 700
    assert small.load_image(0).shape == (700, 900, 3)
    assert small.load_mask(0)[0].shape == (700, 900, 1)


def test_missing_folders_and_bad_options(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="neither"):
        load(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no official ISIC 2018 folders"):
        load(str(tmp_path), layout="2018", split="official")
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="masks"):
        load(str(tmp_path))
    with pytest.raises(ValueError, match="unknown ISIC layout"):
        load(str(tmp_path), layout="2019")
    with pytest.raises(ValueError, match="unknown split"):
        load(str(tmp_path), split="random")


def test_binary_samples_match_the_instances(isic_root):
    root, written = isic_root
    truth = {r.id: r for r in written}
    samples = binary_samples("isic", root, "test")
    assert [s.id for s in samples] == ids(load(root, "test"))
    for sample in samples:
        np.testing.assert_array_equal(sample.load_mask(), truth[sample.id].masks[..., 0])


@pytest.mark.shared_data
def test_real_isic_2016_sample(shared_data):
    folder = shared_data / "isic" / "ramon"
    dataset = load(str(folder))
    jpgs = [n for n in os.listdir(folder / "images") if n.endswith(".jpg")]
    assert dataset.num_images == len(jpgs) == 21
    for image_id in dataset.image_ids:
        info = dataset.image_info[image_id]
        assert info["mask_path"].endswith("_Segmentation.png")
        masks, class_ids = dataset.load_mask(image_id)
        with Image.open(info["path"]) as image:
            assert masks.shape == (image.height, image.width, 1)
        assert 0.005 < masks.mean() < 0.95 and list(class_ids) == [1]
