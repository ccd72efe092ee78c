"""Write small datasets in each true on-disk format, with known masks.

For tests and the demo, as torchvision's ``inject_fake_data``: the files are what the
adapters read in the wild (Kaggle lung names and anti-aliased masks, ISIC JPEG + PNG
folders, SIIM DICOMs + RLE CSV), so the adapters are tested on the formats, not on
arrays. Every generator is deterministic under its seed and returns one
`SyntheticImage` per labelled image, sorted by id.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit,
                         RLELossless)

from datasets import isic as isic_adapter
from datasets import rle

_SUPERSAMPLE = 4
_CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
_SIIM_ROOT_UID = "1.2.276.0.7230010.3.1"  # the prefix of the SIIM ImageIds


@dataclass(frozen=True)
class SyntheticImage:
    """What a generator wrote for one labelled image.

    Attributes:
        id: the dataset's image id (file stem / ImageId).
        path: the image file.
        image: the pixels written, [H, W] (grey) or [H, W, 3] (ISIC), before any lossy
            compression (SIIM: see `write_siim`).
        masks: [H, W, N] bool ground-truth instances, ordered as the adapter orders them.
    """

    id: str
    path: str
    image: np.ndarray
    masks: np.ndarray


def _ellipse_coverage(shape: tuple[int, int], centre, radii) -> np.ndarray:
    """[H, W] float in [0, 1]: the fraction of each pixel inside an ellipse.

    Computed on a 4x finer grid and averaged, which gives the grey anti-aliased edges
    of resized masks.
    """
    height, width = shape
    s = _SUPERSAMPLE
    ys = (np.arange(height * s) + 0.5) / s
    xs = (np.arange(width * s) + 0.5) / s
    inside = (((ys[:, None] - centre[0]) / radii[0]) ** 2
              + ((xs[None, :] - centre[1]) / radii[1]) ** 2) <= 1.0
    return inside.reshape(height, s, width, s).mean(axis=(1, 3))


def _background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] float in [0, 1]: a smooth gradient with noise, X-ray-like."""
    height, width = shape
    ramp = np.linspace(0.55, 0.8, height)[:, None] * np.ones((1, width))
    return np.clip(ramp + rng.normal(0, 0.03, shape), 0, 1)


def _to_u8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)


def _save_png(array: np.ndarray, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


def _save_jpeg(array: np.ndarray, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format="JPEG", quality=95)


def _lung_pair(rng: np.random.Generator, shape: tuple[int, int]):
    """Two anti-aliased lung coverages, image-left first, and the X-ray."""
    height, width = shape
    coverages = []
    for side in (0.28, 0.72):
        centre = (height * rng.uniform(0.45, 0.55), width * (side + rng.uniform(-0.03, 0.03)))
        radii = (height * rng.uniform(0.28, 0.34), width * rng.uniform(0.13, 0.17))
        coverages.append(_ellipse_coverage(shape, centre, radii))
    xray = _background(rng, shape) - 0.4 * (coverages[0] + coverages[1])
    return coverages, _to_u8(xray)


def write_lungs(root: str, n: int = 8, size: tuple[int, int] = (128, 128),
                layout: str = "shenzhen", seed: int = 0, unlabelled: int = 2,
                mask_pattern: str = "{stem}_mask.png",
                image_ext: str = ".png") -> list[SyntheticImage]:
    """Write a lung dataset in one of the lung layouts.

    Args:
        root: output folder.
        n: labelled X-rays; `unlabelled` more are written without masks (skipped by the
            adapter by design).
        size: (height, width).
        layout: "shenzhen" (CXR_png/CHNCXR_0001_0.png + masks/..._mask.png),
            "montgomery" (CXR_png/MCUCXR_0001_0.png + ManualMask/{left,right}Mask/) or
            "plain" (images/ + masks/ named by mask_pattern, images with image_ext).
        seed: drawing seed.

    Returns:
        The labelled images; masks are [H, W, 2] (image-left lung first), the truth
        after thresholding the anti-aliased files at 128.
    """
    if layout not in ("shenzhen", "montgomery", "plain"):
        raise ValueError(f"unknown lung layout {layout!r}")
    rng = np.random.default_rng(seed)
    prefix = "MCUCXR" if layout == "montgomery" else "CHNCXR"
    image_dir = os.path.join(root, "images" if layout == "plain" else "CXR_png")
    written = []
    for i in range(n + unlabelled):
        stem = f"{prefix}_{i + 1:04d}_{i % 2}"
        coverages, xray = _lung_pair(rng, size)
        path = os.path.join(image_dir, stem + (image_ext if layout == "plain" else ".png"))
        (_save_jpeg if path.lower().endswith((".jpg", ".jpeg")) else _save_png)(xray, path)
        if i >= n:
            continue
        grey = [_to_u8(c) for c in coverages]
        if layout == "montgomery":
            # Montgomery's leftMask is the patient's left lung: the image's right side.
            for side, lung in (("rightMask", grey[0]), ("leftMask", grey[1])):
                _save_png(lung, os.path.join(root, "ManualMask", side, stem + ".png"))
        else:
            name = "{stem}_mask.png" if layout == "shenzhen" else mask_pattern
            _save_png(np.maximum(grey[0], grey[1]),
                      os.path.join(root, "masks", name.format(stem=stem)))
        written.append(SyntheticImage(stem, path, xray, np.stack([g >= 128 for g in grey], -1)))
    return written


def write_isic(root: str, n: int = 8, size: tuple[int, int] = (96, 128),
               layout: str = "2018", seed: int = 0, spelling: str = "_segmentation.png",
               parts: tuple[str, ...] = ("Training",)) -> list[SyntheticImage]:
    """Write ISIC_*.jpg images and their 0/255 lesion masks.

    Args:
        n: images per part.
        layout: "2018" (the official folders of each of `parts`) or "plain"
            (images/ + masks/; `parts` ignored).
        spelling: the mask suffix, "_segmentation.png" (2017/2018) or
            "_Segmentation.png" (2016).
        parts: official parts to write: "Training", "Validation", "Test".

    Returns:
        One record per image, masks [H, W, 1]; `image` is the RGB array before JPEG.
    """
    if layout not in isic_adapter.LAYOUTS:
        raise ValueError(f"unknown ISIC layout {layout!r}")
    if spelling not in isic_adapter.MASK_SUFFIXES:
        raise ValueError(f"unknown mask spelling {spelling!r}")
    rng = np.random.default_rng(seed)
    folders = ([isic_adapter.official_folders(root, part) for part in parts]
               if layout == "2018" else
               [(os.path.join(root, "images"), os.path.join(root, "masks"))])
    height, width = size
    written = []
    for index, (image_dir, mask_dir) in enumerate(folders):
        for i in range(n):
            image_id = f"ISIC_{index * 100000 + i:07d}"
            centre = (height * rng.uniform(0.4, 0.6), width * rng.uniform(0.4, 0.6))
            radii = (height * rng.uniform(0.15, 0.3), width * rng.uniform(0.15, 0.3))
            lesion = _ellipse_coverage(size, centre, radii) >= 0.5
            skin = np.array([0.85, 0.65, 0.55]) + rng.normal(0, 0.02, (height, width, 3))
            rgb = _to_u8(np.where(lesion[..., None], skin * 0.45, skin))
            path = os.path.join(image_dir, image_id + ".jpg")
            _save_jpeg(rgb, path)
            _save_png(lesion.astype(np.uint8) * 255, os.path.join(mask_dir, image_id + spelling))
            written.append(SyntheticImage(image_id, path, rgb, lesion[..., None]))
    return sorted(written, key=lambda record: record.id)


def write_dicom(path: str, pixels: np.ndarray, bits: int | None = None,
                photometric: str = "MONOCHROME2", compressed=False,
                window: tuple[float, float] | None = None, image_id: str = "1.2.3.4",
                study: str = "1.2.3", series: str = "1.2.3.1") -> None:
    """Write one single-frame CR DICOM storing `pixels` as they are.

    Args:
        pixels: [H, W] uint8 or uint16, the stored values (invert them yourself for
            MONOCHROME1).
        bits: BitsStored (default: 8 for uint8, 16 for uint16).
        compressed: False, "jpeg" (Baseline, uint8 only), "jpeg2000" (lossless) or
            "rle" (RLE Lossless).
        window: (WindowCenter, WindowWidth) to store, or None.
    """
    if compressed not in (False, None, "jpeg", "jpeg2000", "rle"):
        raise ValueError(f"unknown compression {compressed!r}")
    if compressed == "jpeg" and pixels.dtype != np.uint8:
        raise ValueError("JPEG Baseline holds 8-bit data only")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _CR_STORAGE
    meta.MediaStorageSOPInstanceUID = image_id
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = _CR_STORAGE, image_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientID, ds.Modality, ds.BodyPartExamined = image_id, "CR", "CHEST"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    bits = bits or ds.BitsAllocated
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.tobytes()
    if compressed == "jpeg":
        # pydicom has no JPEG encoder: Pillow encodes the frame, pydicom encapsulates it.
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        meta.TransferSyntaxUID = JPEGBaseline8Bit
    elif compressed == "jpeg2000":
        ds.compress(JPEG2000Lossless, pixels, generate_instance_uid=False)
    elif compressed == "rle":
        ds.compress(RLELossless, pixels, generate_instance_uid=False)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_siim(root: str, n: int = 6, size: tuple[int, int] = (64, 64), nested: bool = True,
               csv_style: str = "kaggle", compressed=False, bits: int = 8,
               photometric: str = "MONOCHROME2", window: tuple[float, float] | None = None,
               seed: int = 0) -> list[SyntheticImage]:
    """Write SIIM DICOMs and their RLE CSV.

    Images cycle through no pneumothorax ("-1"), one instance and two instances (two
    CSV rows). The CSV lists the images in file order.

    Args:
        nested: dicom-images-train/<study>/<series>/<ImageId>.dcm as Kaggle's
            download; else flat dicom/<ImageId>.dcm.
        csv_style: "kaggle" (train-rle.csv, header "ImageId, EncodedPixels") or
            "sample" (train-rle-sample.csv: UTF-8 BOM, no header, no final newline).
            Positive RLEs have a leading space in both, as Kaggle's files do.
        compressed: False, "jpeg" (Baseline, 8 bits only), "jpeg2000" (lossless) or
            "rle" (RLE Lossless).
        bits: BitsStored, 8 or 9..16 (stored in 16 bits).
        photometric: "MONOCHROME2" or "MONOCHROME1" (stored inverted).
        window: (WindowCenter, WindowWidth) to store, or None.

    Returns:
        One record per image (all are labelled), masks [H, W, N]; `image` holds the
        pixel values with bone bright (uint8, or uint16 when bits > 8), before any
        MONOCHROME1 inversion or JPEG compression.
    """
    if csv_style not in ("kaggle", "sample"):
        raise ValueError(f"unknown csv_style {csv_style!r}; expected 'kaggle' or 'sample'")
    if not 8 <= bits <= 16:
        raise ValueError(f"bits must be 8..16, got {bits}")
    rng = np.random.default_rng(seed)
    height, width = size
    top = 2 ** bits - 1
    written, lines = [], []
    for i in range(n):
        serial = f"8323329.{1000 + i}.1517875{165 + i:03d}.{878027 + i}"
        image_id, study, series = (f"{_SIIM_ROOT_UID}.{kind}.{serial}" for kind in (4, 2, 3))
        light = _background(rng, size)
        bright = np.round(light * top).astype(np.uint8 if bits == 8 else np.uint16)
        stored = (top - bright).astype(bright.dtype) if photometric == "MONOCHROME1" else bright
        masks = []
        for k in range(i % 3):
            centre = (height * rng.uniform(0.3, 0.7), width * (0.25 + 0.5 * k))
            radii = (height * rng.uniform(0.1, 0.2), width * rng.uniform(0.05, 0.12))
            masks.append(_ellipse_coverage(size, centre, radii) >= 0.5)
        folder = (os.path.join(root, "dicom-images-train", study, series) if nested
                  else os.path.join(root, "dicom"))
        path = os.path.join(folder, image_id + ".dcm")
        write_dicom(path, stored, bits, photometric, compressed, window, image_id, study,
                    series)
        lines += ([f"{image_id}, {rle.encode(m)}" for m in masks] if masks
                  else [f"{image_id},{rle.EMPTY}"])
        stack = np.stack(masks, -1) if masks else np.zeros(size + (0,), bool)
        written.append(SyntheticImage(image_id, path, bright, stack))
    if csv_style == "kaggle":
        text = "ImageId, EncodedPixels\n" + "\n".join(lines) + "\n"
        csv_name, encoding = "train-rle.csv", "utf-8"
    else:
        text, csv_name, encoding = "\n".join(lines), "train-rle-sample.csv", "utf-8-sig"
    with open(os.path.join(root, csv_name), "w", encoding=encoding, newline="") as file:
        file.write(text)
    return sorted(written, key=lambda record: record.id)

