"""SIIM-ACR pneumothorax: DICOM images + run-length-encoded masks.

On disk (``root``):

- DICOMs, nested as in the Kaggle download
  (``dicom-images-train/<study>/<series>/<ImageId>.dcm``) or flat (``dicom/`` or
  ``root`` itself). The file stem is the ImageId.
- ``train-rle.csv`` with header ``ImageId, EncodedPixels`` (note the space), or the
  header-less ``train-rle-sample.csv`` of the sample set (UTF-8 BOM, a space before
  each positive RLE, no final newline). Both parse the same way.
- Or, after ``python -m datasets.siim preprocess``, PNGs + ``manifest.csv`` (``png_dir``).

Each CSV row of an image is one pneumothorax instance ("pneumothorax", class 1); an
image whose only row is ``-1`` has none. DICOMs without a CSV row and CSV rows without
a DICOM are skipped and counted in the log. Identical duplicate rows count once.
Subsets: "train" / "val" (10:1 by patient, from the DICOM PatientID, seeded) or "all".
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys

import numpy as np

from datasets import preprocess_siim, rle, splits
from datasets.dicom import load_dicom_image, read_header, read_patient_id
from datasets.masks import image_size
from datasets.samples import BinarySample, samples_from_dataset
from mrcnn.dataset import Dataset, read_image

logger = logging.getLogger(__name__)

SOURCE = "siim"
CSV_NAMES = ("train-rle.csv", "train-rle-sample.csv")
DICOM_DIRS = ("dicom-images-train", "dicom")
COLUMNS = ("ImageId", "EncodedPixels")


def _is_rle(text: str) -> bool:
    return text == rle.EMPTY or all(token.isdigit() for token in text.split())


def read_rle_csv(path: str) -> dict[str, list[str]]:
    """{ImageId: [RLE, ...]} from a SIIM CSV, with or without its header.

    An image whose rows are all "-1" maps to []. Fields are stripped, a UTF-8 BOM is
    ignored. Each RLE must be "-1" or integers; the pairs and bounds are checked when
    decoded, once the image size is known (see `rle.decode`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a header with other columns, or a row without two fields (the
            message names the file and line).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"RLE CSV not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as file:
        rows = [(number, [field.strip() for field in row])
                for number, row in enumerate(csv.reader(file), start=1) if any(row)]
    if not rows:
        raise ValueError(f"{path}: empty CSV; expected ImageId, EncodedPixels rows")
    first = rows[0][1]
    if len(first) == 2 and _is_rle(first[1]):
        order = (0, 1)  # header-less, as the sample CSV
    elif sorted(first) == sorted(COLUMNS):
        order = (first.index("ImageId"), first.index("EncodedPixels"))
        rows = rows[1:]
    else:
        raise ValueError(f"{path}: unknown CSV columns {first}; expected "
                         f"{', '.join(COLUMNS)} (or no header)")
    table: dict[str, list[str]] = {}
    negatives, duplicates = set(), 0
    for number, fields in rows:
        if len(fields) != 2 or not fields[order[0]]:
            raise ValueError(f"{path}, line {number}: expected 2 fields (ImageId, "
                             f"EncodedPixels), got {fields}")
        image_id, encoded = fields[order[0]], fields[order[1]]
        if not _is_rle(encoded):
            raise ValueError(f"{path}, line {number}: EncodedPixels of {image_id} is "
                             f"{encoded[:40]!r}; expected '-1' or 'offset length ...'")
        runs = table.setdefault(image_id, [])
        if encoded == rle.EMPTY:
            negatives.add(image_id)
        elif encoded in runs:
            duplicates += 1
        else:
            runs.append(encoded)
    mixed = sorted(i for i in negatives if table[i])
    if mixed:
        logger.warning("%s: %d images have both '-1' and RLE rows (e.g. %s); the '-1' "
                       "rows are ignored", path, len(mixed), mixed[0])
    if duplicates:
        logger.info("%s: %d duplicate rows counted once", path, duplicates)
    return table


def find_csv(root: str) -> str:
    """The RLE CSV in root: train-rle.csv or train-rle-sample.csv."""
    for name in CSV_NAMES:
        if os.path.exists(os.path.join(root, name)):
            return os.path.join(root, name)
    raise FileNotFoundError(f"no RLE CSV in {root}: expected one of {', '.join(CSV_NAMES)} "
                            "(or pass csv_path)")


def find_dicom_dir(root: str) -> str:
    """dicom-images-train/ or dicom/ in root, else root itself."""
    for name in DICOM_DIRS:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    return root


class SIIMDataset(Dataset):
    """Pneumothorax instances, one per RLE row; images from DICOM or preprocessed PNG."""

    def load_siim(self, root: str, subset: str = "train", csv_path: str | None = None,
                  dicom_dir: str | None = None, png_dir: str | None = None,
                  split_by: str = "patient", seed: int = 0) -> None:
        """Add the labelled images of one subset.

        Args:
            root: the folder with the CSV and the DICOM folder.
            subset: "train", "val" or "all".
            csv_path: the RLE CSV (default: found in root).
            dicom_dir: the DICOM folder (default: found in root).
            png_dir: a `preprocess` output folder; images are read from its PNGs.
            split_by: "patient" (the DICOM PatientID, so one patient's X-rays share a
                subset; reads every labelled DICOM header, about 1 ms each, unless
                png_dir's manifest has them) or "image" (the ImageId).
            seed: the split seed.
        """
        if split_by not in ("patient", "image"):
            raise ValueError(f"unknown split_by {split_by!r}; expected 'patient' or 'image'")
        if not os.path.isdir(root):
            raise FileNotFoundError(f"SIIM dataset folder not found: {root}")
        self.add_class(SOURCE, 1, "pneumothorax")
        table = read_rle_csv(csv_path or find_csv(root))
        manifest = None if png_dir is None else preprocess_siim.read_manifest(png_dir)
        if manifest is not None:
            paths = {i: row["png"] for i, row in manifest.items()}
        else:
            paths = preprocess_siim.find_dicoms(dicom_dir or find_dicom_dir(root))
        unlabelled = len(set(paths) - set(table))
        missing = len(set(table) - set(paths))
        if unlabelled:
            logger.info("%s: skipped %d images without a CSV row", root, unlabelled)
        if missing:
            logger.info("%s: skipped %d CSV ImageIds without an image file", root, missing)
        ids = sorted(set(paths) & set(table))
        if not ids:
            raise FileNotFoundError(f"no SIIM image in {root} has a CSV row "
                                    f"({len(paths)} images, {len(table)} CSV ImageIds)")
        if split_by == "image" or subset == "all":
            groups = {i: i for i in ids}
        elif manifest is not None:
            groups = {i: manifest[i]["PatientID"] for i in ids}
        else:
            groups = {i: read_patient_id(paths[i]) or i for i in ids}
        ids = splits.select(ids, groups.get, subset, [("val", splits.SIIM_VAL_FRACTION)],
                            seed=seed)
        for image_id in ids:
            self.add_image(SOURCE, image_id=image_id, path=paths[image_id],
                           rles=table[image_id])

    def _shape(self, info: dict) -> tuple[int, int]:
        if info["path"].lower().endswith(".dcm"):
            header = read_header(info["path"])
            return int(header.Rows), int(header.Columns)
        return image_size(info["path"])

    def load_image(self, image_id: int) -> np.ndarray:
        """[H, W, 3] uint8: the radiograph's grey level in each channel."""
        info = self.image_info[image_id]
        if info["path"].lower().endswith(".dcm"):
            return np.repeat(load_dicom_image(info["path"])[..., None], 3, axis=-1)
        return read_image(info["path"])

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """[H, W, N] bool, one instance per RLE row (N = 0 for "-1"), class ids [N] int32.

        Raises:
            ValueError: a malformed RLE (names the ImageId).
        """
        info = self.image_info[image_id]
        if info["source"] != SOURCE:
            return super().load_mask(image_id)
        height, width = self._shape(info)
        masks = [rle.decode(text, height, width, info["id"]) for text in info["rles"]]
        stacked = np.stack(masks, axis=-1) if masks else np.zeros((height, width, 0), bool)
        return stacked, np.ones(len(masks), np.int32)

    def image_reference(self, image_id: int) -> str:
        return self.image_info[image_id]["path"]


def binary_samples(root: str, subset: str = "train", **options) -> list[BinarySample]:
    """U-Net samples: each image with the union of its RLE rows; options as load_siim."""
    dataset = SIIMDataset()
    dataset.load_siim(root, subset, **options)
    dataset.prepare()
    return samples_from_dataset(dataset)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.siim")
    commands = parser.add_subparsers(dest="command", required=True)
    preprocess_siim.add_arguments(
        commands.add_parser("preprocess", help="DICOM -> PNG + manifest.csv, resumable"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    return preprocess_siim.run(args)


if __name__ == "__main__":
    sys.exit(main())
