"""DICOM radiographs -> 8-bit grey images.

Three things decide how a radiograph looks once it is 8 bits:

- compression: SIIM stores JPEG Baseline pixel data; other archives use JPEG 2000,
  JPEG-LS or RLE. pydicom decodes them through plugins (pylibjpeg, Pillow, gdcm); a
  missing plugin is reported with the transfer syntax and what to install.
- MONOCHROME1 stores bone dark; it is inverted so bone is bright, as in MONOCHROME2.
- 12-16 bit data is windowed to 8 bits: the file's first VOI window (WindowCenter /
  WindowWidth, after RescaleSlope / RescaleIntercept) when it has one, else the
  image's own min..max. Data of 8 bits or fewer is kept as stored, window tags or not:
  8-bit CR exports such as SIIM's are already display-ready.
"""
from __future__ import annotations

import os

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder


class MissingDecoderError(ImportError):
    """The pixel data is compressed with a transfer syntax no installed plugin decodes."""


def _first(value) -> float:
    # Window tags may hold several windows (MultiValue); the first is the default.
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0]
    return float(value)


def _check_decoder(ds: pydicom.Dataset, path: str) -> None:
    syntax = ds.file_meta.TransferSyntaxUID
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise MissingDecoderError(
            f"{path}: no pixel data decoder exists in pydicom for transfer syntax "
            f"{syntax.name} ({syntax})") from None
    if not decoder.is_available:
        needs = "; ".join(decoder.missing_dependencies) or "a decoding plugin"
        raise MissingDecoderError(
            f"{path}: pixel data is compressed as {syntax.name} ({syntax}) and no decoder "
            f"for it is installed. Install one of: {needs}")


def _read(path: str, stop_before_pixels: bool) -> pydicom.Dataset:
    if not os.path.exists(path):
        raise FileNotFoundError(f"DICOM file not found: {path}")
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot read DICOM {path}: not a DICOM file or truncated "
                         f"({exc})") from exc


def read_header(path: str) -> pydicom.Dataset:
    """The DICOM data set without its pixel data (fast: stops before Pixel Data).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a DICOM file, or truncated (names the file).
    """
    return _read(path, stop_before_pixels=True)


def read_patient_id(path: str) -> str | None:
    """The PatientID in a DICOM's header, or None when it is absent or empty."""
    patient = read_header(path).get("PatientID", None)
    return str(patient) if patient else None


def _window(pixels: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    values = pixels.astype(np.float64)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    values = values * slope + float(getattr(ds, "RescaleIntercept", 0) or 0)
    if "WindowCenter" in ds and "WindowWidth" in ds and _first(ds.WindowWidth) > 1:
        # DICOM PS3.3 C.11.2.1.2: the linear VOI function.
        centre, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        scaled = (values - (centre - 0.5)) / (width - 1) + 0.5
    else:
        low, high = values.min(), values.max()
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def load_dicom_image(path: str) -> np.ndarray:
    """Read a single-frame greyscale DICOM as [H, W] uint8, bone bright.

    Raises:
        FileNotFoundError: no such file.
        MissingDecoderError: compressed pixel data and no decoder installed (names the
            transfer syntax).
        ValueError: not a DICOM file, truncated, no or undecodable pixel data,
            several frames, or colour data.
    """
    ds = _read(path, stop_before_pixels=False)
    if "PixelData" not in ds:
        raise ValueError(f"DICOM {path} has no pixel data")
    photometric = str(getattr(ds, "PhotometricInterpretation", ""))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"DICOM {path} is {photometric or 'missing PhotometricInterpretation'}"
                         "; expected a MONOCHROME1 or MONOCHROME2 radiograph")
    if int(getattr(ds, "NumberOfFrames", 1) or 1) != 1:
        raise ValueError(f"DICOM {path} has {ds.NumberOfFrames} frames; expected one")
    _check_decoder(ds, path)
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # decoders raise many types; the caller needs the path
        syntax = ds.file_meta.TransferSyntaxUID
        raise ValueError(f"cannot decode pixel data of DICOM {path} ({syntax.name}): "
                         f"corrupt or truncated ({exc})") from exc
    bits = int(getattr(ds, "BitsStored", 8))
    if bits <= 8 and pixels.dtype == np.uint8:
        image = pixels.copy()
    else:
        image = _window(pixels, ds)
    if photometric == "MONOCHROME1":
        image = 255 - image
    return image
