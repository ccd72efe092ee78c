"""datasets/dicom.py: compressed pixel data, MONOCHROME1, windowing, bad files."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate

import datasets.dicom as dicom
from datasets.dicom import MissingDecoderError, load_dicom_image, read_header
from datasets.synthetic import write_dicom

RAMP = (np.arange(48 * 40).reshape(48, 40) % 251).astype(np.uint8)


@pytest.mark.parametrize("compressed", [False, "jpeg2000", "rle"])
def test_lossless_8_bit_is_returned_as_stored(tmp_path, compressed):
    path = str(tmp_path / "a.dcm")
    write_dicom(path, RAMP, compressed=compressed)
    image = load_dicom_image(path)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, RAMP)


def test_8_bit_ignores_window_and_rescale_tags(tmp_path):
    path = str(tmp_path / "a.dcm")
    write_dicom(path, RAMP, window=(40, 20))
    ds = pydicom.dcmread(path)
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(load_dicom_image(path), RAMP)


def test_jpeg_baseline(tmp_path):
    path = str(tmp_path / "a.dcm")
    smooth = np.tile(np.linspace(20, 230, 40).astype(np.uint8), (48, 1))
    write_dicom(path, smooth, compressed="jpeg")
    assert read_header(path).file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
    assert np.abs(load_dicom_image(path).astype(int) - smooth).max() <= 3


def test_monochrome1_is_inverted_so_bone_is_bright(tmp_path):
    path = str(tmp_path / "a.dcm")
    write_dicom(path, 255 - RAMP, photometric="MONOCHROME1")
    np.testing.assert_array_equal(load_dicom_image(path), RAMP)


def test_12_bit_without_window_is_stretched_min_to_max(tmp_path):
    path = str(tmp_path / "a.dcm")
    stored = np.array([[100, 100 + 4 * 255], [100 + 2 * 255, 100 + 255]], np.uint16)
    write_dicom(path, np.tile(stored, (16, 16)), bits=12, compressed="jpeg2000")
    np.testing.assert_array_equal(load_dicom_image(path), np.tile([[0, 255], [128, 64]], (16, 16)))


def test_16_bit_uses_the_first_voi_window(tmp_path):
    path = str(tmp_path / "a.dcm")
    stored = np.array([[800, 1000], [1050, 1200]], np.uint16)
    write_dicom(path, stored, bits=16, window=(1000, 200))
    # PS3.3 C.11.2.1.2: ((x - 999.5) / 199 + 0.5) clipped to [0, 1], times 255.
    np.testing.assert_array_equal(load_dicom_image(path), [[0, 128], [192, 255]])


def test_12_bit_monochrome1_is_windowed_then_inverted(tmp_path):
    path = str(tmp_path / "a.dcm")
    stored = np.array([[0, 4095]], np.uint16)
    write_dicom(path, stored, bits=12, photometric="MONOCHROME1")
    np.testing.assert_array_equal(load_dicom_image(path), [[255, 0]])


def test_transfer_syntax_without_any_decoder_is_named(tmp_path):
    path = str(tmp_path / "a.dcm")
    write_dicom(path, RAMP)
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000MC  # JPEG 2000 Part 2
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(MissingDecoderError,
                       match=r"JPEG 2000 Part 2 .*\(1\.2\.840\.10008\.1\.2\.4\.93\)"):
        load_dicom_image(path)


def test_missing_decoder_plugin_names_the_syntax_and_what_to_install(tmp_path, monkeypatch):
    class Unavailable:
        is_available = False
        missing_dependencies = ["pylibjpeg - requires pylibjpeg-libjpeg"]

    path = str(tmp_path / "a.dcm")
    write_dicom(path, RAMP, compressed="jpeg")
    monkeypatch.setattr(dicom, "get_decoder", lambda syntax: Unavailable())
    with pytest.raises(MissingDecoderError, match=r"JPEG Baseline \(Process 1\).*pylibjpeg"):
        load_dicom_image(path)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.dcm"):
        load_dicom_image(str(tmp_path / "missing.dcm"))
    text = tmp_path / "notes.dcm"
    text.write_text("ImageId,EncodedPixels\n")
    with pytest.raises(ValueError, match="notes.dcm"):
        load_dicom_image(str(text))
    path = tmp_path / "cut.dcm"
    write_dicom(str(path), RAMP)
    data = path.read_bytes()
    path.write_bytes(data[:-500])  # pixel data cut short
    with pytest.raises(ValueError, match="cut.dcm"):
        load_dicom_image(str(path))
    path.write_bytes(data[:200])  # cut inside the header
    with pytest.raises(ValueError, match="cut.dcm"):
        load_dicom_image(str(path))


def test_colour_and_multiframe_are_rejected(tmp_path):
    path = str(tmp_path / "a.dcm")
    write_dicom(path, RAMP)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 2
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ValueError, match="2 frames"):
        load_dicom_image(path)
    ds.NumberOfFrames = 1
    ds.PhotometricInterpretation = "RGB"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ValueError, match="RGB"):
        load_dicom_image(path)


@pytest.mark.shared_data
def test_real_siim_jpeg_dicoms(shared_data):
    files = sorted((shared_data / "siim" / "sample" / "dicom").glob("*.dcm"))
    assert files
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
        image = load_dicom_image(str(path))
        assert image.shape == (ds.Rows, ds.Columns) and image.dtype == np.uint8
        np.testing.assert_array_equal(image, ds.pixel_array)  # 8-bit MONOCHROME2: as stored
        assert image.std() > 20  # a radiograph, not a blank frame
