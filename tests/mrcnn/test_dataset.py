"""mrcnn.dataset: the Dataset class map and read_image's conversions."""
import numpy as np
import pytest
from PIL import Image

from mrcnn.dataset import Dataset, read_image


def _two_source_dataset() -> Dataset:
    ds = Dataset()
    ds.add_class("lungs", 1, "lung")
    ds.add_class("isic", 1, "lesion,naevus")
    ds.add_class("lungs", 1, "lung")  # a repeat is ignored
    ds.add_image("lungs", "CHNCXR_0001_0", "/x/a.png")
    ds.add_image("isic", "ISIC_0000031", "/x/b.jpg", width=7)
    ds.prepare()
    return ds


def test_prepare_builds_matterport_class_maps():
    ds = _two_source_dataset()
    assert ds.num_classes == 3 and ds.num_images == 2
    assert ds.class_names == ["BG", "lung", "lesion"]
    assert ds.map_source_class_id("isic.1") == 2
    assert ds.get_source_class_id(2, "isic") == 1
    assert ds.source_class_ids == {"": [0], "isic": [0, 2], "lungs": [0, 1]}
    assert ds.image_from_source_map["isic.ISIC_0000031"] == 1
    assert ds.image_info[1]["width"] == 7
    assert list(ds.image_ids) == [0, 1]
    with pytest.raises(ValueError, match="belongs to source 'isic'"):
        ds.get_source_class_id(2, "lungs")
    with pytest.raises(ValueError, match="dot"):
        ds.add_class("a.b", 1, "x")


def test_read_image_gray_and_rgba_become_rgb(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 1] = 200
    Image.fromarray(rgba).save(tmp_path / "a.png")
    g = read_image(str(tmp_path / "g.png"))
    a = read_image(str(tmp_path / "a.png"))
    assert g.shape == (8, 8, 3) and g.dtype == np.uint8
    np.testing.assert_array_equal(g[..., 2], gray)
    assert a.shape == (8, 8, 3) and (a[..., 1] == 200).all()


def test_read_image_scales_12_bit_data_in_16_bit_png(tmp_path):
    data = np.linspace(0, 4095, 64).astype(np.uint16).reshape(8, 8)
    Image.fromarray(data).save(tmp_path / "x.png")
    image = read_image(str(tmp_path / "x.png"))
    assert image.max() == 255 and image.min() == 0


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(str(tmp_path / "missing.png"))
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="corrupt.png"):
        read_image(str(bad))
