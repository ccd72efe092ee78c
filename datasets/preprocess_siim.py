"""Convert SIIM DICOMs to 8-bit PNGs plus a manifest CSV, resumably.

    python -m datasets.siim preprocess --dicom DIR --out DIR
    python datasets/preprocess_siim.py --dicom DIR --out DIR

The PNGs hold the final 8-bit image (windowed, MONOCHROME1 inverted), so training
needs no DICOM decoder plugin and any image tool can open them; reading them is not
meant to be faster. Each PNG is written to a temporary name and renamed, so a killed
run leaves no half-written PNG; a re-run skips the PNGs that exist and rewrites the
same manifest (``manifest.csv``: ImageId, PatientID, png, dicom, height, width; sorted
by ImageId; paths relative to the output and DICOM folders; PatientID lets the SIIM
adapter split by patient without opening the DICOMs).
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys

if __package__ in (None, ""):
    # Run as a script, Python puts datasets/ itself first on the path, where rle.py and
    # dicom.py would shadow other packages' modules; the repository root goes there.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from datasets.dicom import load_dicom_image, read_patient_id  # noqa: E402
from datasets.masks import image_size  # noqa: E402

logger = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
COLUMNS = ("ImageId", "PatientID", "png", "dicom", "height", "width")
_TMP_SUFFIX = ".png.tmp"


def find_dicoms(dicom_dir: str) -> dict[str, str]:
    """{ImageId: path} for every ``*.dcm`` below dicom_dir (nested or flat).

    Raises:
        FileNotFoundError: the folder is missing or holds no .dcm file.
        ValueError: one ImageId in two files.
    """
    if not os.path.isdir(dicom_dir):
        raise FileNotFoundError(f"DICOM folder not found: {dicom_dir}")
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(dicom_dir):
        dirs.sort()
        for name in sorted(files):
            if not name.lower().endswith(".dcm"):
                continue
            image_id, path = name[:-4], os.path.join(folder, name)
            if image_id in found:
                raise ValueError(f"ImageId {image_id} appears twice: {found[image_id]} "
                                 f"and {path}")
            found[image_id] = path
    if not found:
        raise FileNotFoundError(f"no .dcm files found below {dicom_dir}")
    return found


def read_manifest(out_dir: str) -> dict[str, dict]:
    """{ImageId: row} from out_dir/manifest.csv, with `png` made a full path."""
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(f"manifest not found: {path} (run the preprocess command)")
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: unknown CSV columns {reader.fieldnames}; "
                             f"expected {list(COLUMNS)}")
        return {row["ImageId"]: dict(row, png=os.path.join(out_dir, row["png"]))
                for row in reader}


def _write_png(image, path: str) -> None:
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path)[:-4] + _TMP_SUFFIX)
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)  # atomic on one file system


def preprocess(dicom_dir: str, out_dir: str, progress: bool = True) -> tuple[str, list[str]]:
    """Convert every DICOM below dicom_dir to out_dir/<ImageId>.png.

    Returns:
        (manifest path, ImageIds that failed). Failures are logged and left out of
        the manifest; the other files are still converted.
    """
    dicoms = find_dicoms(dicom_dir)
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.endswith(_TMP_SUFFIX):  # left by a killed run
            os.remove(os.path.join(out_dir, name))
    rows, failed = [], []
    for image_id, dicom_path in tqdm(sorted(dicoms.items()), desc="DICOM -> PNG",
                                     unit="file", disable=not progress):
        png = os.path.join(out_dir, image_id + ".png")
        try:
            patient = read_patient_id(dicom_path) or image_id
            if os.path.exists(png):
                height, width = image_size(png)
            else:
                image = load_dicom_image(dicom_path)
                _write_png(image, png)
                height, width = image.shape
        except (ValueError, ImportError, OSError) as exc:
            logger.error("ImageId %s: %s", image_id, exc)
            failed.append(image_id)
            continue
        rows.append((image_id, patient, image_id + ".png",
                     os.path.relpath(dicom_path, dicom_dir), height, width))
    manifest = os.path.join(out_dir, MANIFEST)
    tmp = manifest + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, manifest)
    return manifest, failed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dicom", required=True, help="folder of .dcm files (nested or flat)")
    parser.add_argument("--out", required=True, help="folder for the PNGs and manifest.csv")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    manifest, failed = preprocess(args.dicom, args.out, progress=not args.quiet)
    print(f"manifest: {manifest}")
    if failed:
        print(f"{len(failed)} DICOM files failed: {', '.join(failed[:10])}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SIIM DICOM -> PNG + manifest.csv")
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
