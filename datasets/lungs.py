"""Chest X-ray lung masks: Shenzhen / Montgomery (Kaggle and NLM layouts) and plain folders.

Layouts (``layout="auto"`` picks by the folders present):

- ``"shenzhen"``: the Kaggle "Lung Segmentation" download, ``CXR_png/CHNCXR_0001_0.png``
  with ``masks/CHNCXR_0001_0_mask.png``. Its Montgomery masks keep the image name
  (``masks/MCUCXR_0001_0.png``); both spellings are accepted. About a hundred X-rays
  there have no mask: they are skipped by design and counted in the log.
- ``"montgomery"``: the NLM Montgomery set, ``CXR_png/MCUCXR_0001_0.png`` with
  ``ManualMask/leftMask/`` and ``ManualMask/rightMask/`` files of the same name.
- ``"plain"``: ``images/`` + ``masks/``, the mask named by ``mask_pattern`` from the image
  stem (``"{stem}_mask.png"``, ``"{stem}@.png"`` for OpenIST, ``"{stem}.png"``...).

Masks are thresholded at ``threshold`` (128: resized masks have anti-aliased edges).

Instances: one per lung, class "lung". Montgomery draws each lung in its own file. In
the other layouts both lungs share one mask, so the instances are its connected
components (8-connectivity): components smaller than ``min_area`` (a fraction of the
image) are noise and dropped; the two largest are the lungs; any other component (a
lung cut in two by a marker) joins the lung whose centre is nearest in x. Instances
are ordered left to right in the image (the patient's right lung first).
"""
from __future__ import annotations

import logging
import os
import re

import numpy as np
from scipy import ndimage

from datasets import splits
from datasets.masks import binarize, check_same_size, image_size, read_gray
from datasets.samples import BinarySample, samples_from_dataset
from mrcnn.dataset import Dataset
from mrcnn.masks import components_by_area

logger = logging.getLogger(__name__)

SOURCE = "lungs"
LAYOUTS = ("shenzhen", "montgomery", "plain")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# CHNCXR_0001_0: the trailing digit is the label (0 normal, 1 TB), not part of the patient.
_PATIENT = re.compile(r"^((?:CHN|MCU)CXR_\d+)_[01]$")


def patient_of(image_id: str) -> str:
    """The split group of an image: its patient for Shenzhen/Montgomery names, else the id."""
    match = _PATIENT.match(image_id)
    return match.group(1) if match else image_id


def detect_layout(root: str) -> str:
    """Which of LAYOUTS the folder `root` holds."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"lung dataset folder not found: {root}")
    present = {name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name))}
    if {"CXR_png", "ManualMask"} <= present:
        return "montgomery"
    if {"CXR_png", "masks"} <= present:
        return "shenzhen"
    if {"images", "masks"} <= present:
        return "plain"
    raise FileNotFoundError(
        f"{root} has none of the lung layouts: CXR_png/ + masks/ (Kaggle Shenzhen), "
        f"CXR_png/ + ManualMask/ (Montgomery) or images/ + masks/ (plain)")


def _list_images(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder not found: {folder}")
    return sorted(name for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."))


def _require_dir(path: str) -> str:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"mask folder not found: {path}")
    return path


def find_pairs(root: str, layout: str = "auto",
               mask_pattern: str = "{stem}_mask.png") -> list[dict]:
    """Image/mask file pairs on disk, images without a mask left out (and counted).

    Returns:
        Sorted list of {"id", "path", "mask_paths"}: one mask path, or two for
        Montgomery (left, right).
    """
    if layout == "auto":
        layout = detect_layout(root)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown lung layout {layout!r}; expected 'auto' or one of {LAYOUTS}")
    if "{stem}" not in mask_pattern:
        raise ValueError(f"mask_pattern {mask_pattern!r} must contain '{{stem}}'")
    image_dir = os.path.join(root, "images" if layout == "plain" else "CXR_png")
    if layout == "montgomery":
        mask_dirs = [_require_dir(os.path.join(root, "ManualMask", side))
                     for side in ("leftMask", "rightMask")]
    else:
        mask_dirs = [_require_dir(os.path.join(root, "masks"))]
    names = _list_images(image_dir)
    pairs, unmasked = [], 0
    for name in names:
        stem = os.path.splitext(name)[0]
        if layout == "montgomery":
            masks = [os.path.join(folder, name) for folder in mask_dirs]
            present = [os.path.exists(m) for m in masks]
            if any(present) and not all(present):
                raise FileNotFoundError(
                    f"{name} has only one lung drawn: missing {masks[present.index(False)]}")
            candidates = masks if all(present) else []
        else:
            spellings = [f"{stem}_mask.png", f"{stem}.png"] if layout == "shenzhen" else \
                [mask_pattern.format(stem=stem)]
            candidates = [os.path.join(mask_dirs[0], s) for s in spellings
                          if os.path.exists(os.path.join(mask_dirs[0], s))][:1]
        if not candidates:
            unmasked += 1
            continue
        pairs.append({"id": stem, "path": os.path.join(image_dir, name),
                      "mask_paths": candidates})
    if unmasked:
        logger.info("%s: skipped %d of %d X-rays that have no lung mask", root, unmasked,
                    len(names))
    if not pairs:
        raise FileNotFoundError(f"no image/mask pairs found in {root} (layout {layout!r}, "
                                f"{len(names)} images)")
    return pairs


def lung_instances(mask: np.ndarray, min_area: float = 0.001) -> np.ndarray:
    """Split a both-lungs mask into at most two lung instances.

    Args:
        mask: [H, W] bool, both lungs.
        min_area: components smaller than this fraction of H*W are dropped as noise.

    Returns:
        [H, W, N] bool with N in {0, 1, 2}, ordered by x centre (image left first).
    """
    labels, order, areas = components_by_area(mask)
    keep = [int(label) for label, area in zip(order, areas) if area >= min_area * mask.size]
    if not keep:
        return np.zeros(mask.shape + (0,), bool)
    centres = ndimage.center_of_mass(np.ones_like(mask), labels, keep)
    x_of = {label: centre[1] for label, centre in zip(keep, centres)}
    lungs = keep[:2]
    owner = {label: label for label in lungs}
    for label in keep[2:]:
        owner[label] = min(lungs, key=lambda lung: abs(x_of[lung] - x_of[label]))
    lungs.sort(key=lambda lung: x_of[lung])
    return np.stack([np.isin(labels, [k for k, v in owner.items() if v == lung])
                     for lung in lungs], axis=-1)


class LungsDataset(Dataset):
    """Lung instances (class "lung") from any of the lung layouts."""

    def load_lungs(self, root: str, subset: str = "train", layout: str = "auto",
                   mask_pattern: str = "{stem}_mask.png", threshold: int = 128,
                   min_area: float = 0.001, seed: int = 0) -> None:
        """Add the images of one subset.

        Args:
            root: the dataset folder (see the module docstring for layouts).
            subset: "train", "val" (10:1 by patient, seeded; byte-identical image
                files share a subset) or "all".
            layout: "auto" or one of LAYOUTS.
            mask_pattern: mask file name from the image stem, for layout "plain".
            threshold: grey level from which a mask pixel is lung.
            min_area: see `lung_instances`.
            seed: the split seed.
        """
        self.add_class(SOURCE, 1, "lung")
        pairs = find_pairs(root, layout, mask_pattern)
        chosen = splits.select(pairs, lambda p: patient_of(p["id"]), subset,
                               [("val", splits.LUNGS_VAL_FRACTION)], seed=seed,
                               path_of=lambda p: p["path"])
        for pair in chosen:
            self.add_image(SOURCE, image_id=pair["id"], path=pair["path"],
                           mask_paths=pair["mask_paths"], patient=patient_of(pair["id"]),
                           threshold=threshold, min_area=min_area)

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Lung instances [H, W, N] bool (N = 2 normally) and class ids [N] int32.

        Raises:
            ValueError: a mask that differs in size from its image, or that is empty.
        """
        info = self.image_info[image_id]
        if info["source"] != SOURCE:
            return super().load_mask(image_id)
        shape = image_size(info["path"])
        binary = []
        for path in info["mask_paths"]:
            mask = binarize(read_gray(path), info["threshold"])
            check_same_size(mask, shape, path, info["path"])
            binary.append(mask)
        if len(binary) == 2:
            masks = np.stack(binary, axis=-1)
            masks = masks[..., np.argsort([np.nonzero(m)[1].mean() if m.any() else 0
                                           for m in binary])]
        else:
            masks = lung_instances(binary[0], info["min_area"])
        if masks.shape[-1] == 0 or not masks.any(axis=(0, 1)).all():
            raise ValueError(f"empty lung mask for {info['id']}: "
                             f"{', '.join(info['mask_paths'])} has no pixel >= "
                             f"{info['threshold']} (or only specks below min_area)")
        return masks, np.ones(masks.shape[-1], np.int32)

    def image_reference(self, image_id: int) -> str:
        return self.image_info[image_id]["path"]


def binary_samples(root: str, subset: str = "train", **options) -> list[BinarySample]:
    """U-Net samples: each image with the union of its lungs; options as load_lungs."""
    dataset = LungsDataset()
    dataset.load_lungs(root, subset, **options)
    dataset.prepare()
    return samples_from_dataset(dataset)
