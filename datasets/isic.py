"""ISIC skin-lesion segmentation (2018 Task 1; 2016/2017 mask spelling accepted).

Layouts (``layout="auto"`` picks by the folders present):

- ``"2018"``: the official download folders, ``ISIC2018_Task1-2_{Training,Validation,
  Test}_Input/ISIC_0000000.jpg`` with ``ISIC2018_Task1_{...}_GroundTruth/
  ISIC_0000000_segmentation.png``. Only the Training pair is required.
- ``"plain"``: ``images/ISIC_*.jpg`` + ``masks/``.

Masks are ``<id>_segmentation.png`` (2017, 2018) or ``<id>_Segmentation.png`` (2016).
The challenge defines lesion pixels as 255, so masks are binarised at 255. Each image
has one "lesion" instance. An image without its mask is an error; so is an empty mask,
when it is read (or, with ``validate=True``, the image is skipped with a warning).

Subsets: ``split="seeded"`` (default) splits the Training (or plain) images 75/25 into
train+val / test, then 75/25 into train / val, by image. ``split="official"`` maps
train / val / test to the official Training / Validation / Test folders.

``shrink_large=True`` reduces images larger than 700x700 (both sides over 700) to 25%
of their size, and their masks with them (nearest neighbour, after binarising).
"""
from __future__ import annotations

import logging
import os

import cv2
import numpy as np

from datasets import splits
from datasets.masks import binarize, check_same_size, image_size, read_gray
from datasets.samples import BinarySample, samples_from_dataset
from mrcnn.dataset import Dataset, read_image

logger = logging.getLogger(__name__)

SOURCE = "isic"
LAYOUTS = ("2018", "plain")
OFFICIAL = {"train": "Training", "val": "Validation", "test": "Test"}
MASK_SUFFIXES = ("_segmentation.png", "_Segmentation.png")
LESION = 255
SHRINK_OVER = 700
SHRINK_FACTOR = 0.25


def official_folders(root: str, part: str) -> tuple[str, str]:
    """(image folder, mask folder) of one official part: Training, Validation or Test."""
    return (os.path.join(root, f"ISIC2018_Task1-2_{part}_Input"),
            os.path.join(root, f"ISIC2018_Task1_{part}_GroundTruth"))


def detect_layout(root: str) -> str:
    """Which of LAYOUTS the folder `root` holds."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"ISIC dataset folder not found: {root}")
    if any(os.path.isdir(folder) for folder in official_folders(root, "Training")):
        return "2018"
    if os.path.isdir(os.path.join(root, "images")) or os.path.isdir(os.path.join(root, "masks")):
        return "plain"
    raise FileNotFoundError(
        f"{root} has neither ISIC2018_Task1-2_Training_Input/ + "
        f"ISIC2018_Task1_Training_GroundTruth/ nor images/ + masks/")


def find_pairs(image_dir: str, mask_dir: str) -> list[dict]:
    """Each ``ISIC_*.jpg`` in image_dir with its mask in mask_dir.

    Returns:
        Sorted list of {"id", "path", "mask_path"}.

    Raises:
        FileNotFoundError: a missing folder, or an image without its mask (named).
    """
    for folder in (image_dir, mask_dir):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"ISIC folder not found: {folder}")
    # The 2017 inputs sit beside *_superpixels.png files; only the JPEGs are images.
    names = sorted(n for n in os.listdir(image_dir)
                   if n.startswith("ISIC_") and n.lower().endswith((".jpg", ".jpeg")))
    if not names:
        raise FileNotFoundError(f"no ISIC_*.jpg images in {image_dir}")
    masks = set(os.listdir(mask_dir))
    pairs = []
    for name in names:
        stem = os.path.splitext(name)[0]
        spelled = [stem + suffix for suffix in MASK_SUFFIXES if stem + suffix in masks]
        if not spelled:
            raise FileNotFoundError(
                f"ISIC image {os.path.join(image_dir, name)} has no mask: expected "
                f"{os.path.join(mask_dir, stem + MASK_SUFFIXES[0])} (or _Segmentation.png)")
        pairs.append({"id": stem, "path": os.path.join(image_dir, name),
                      "mask_path": os.path.join(mask_dir, spelled[0])})
    return pairs


def shrink_shape(height: int, width: int) -> tuple[int, int] | None:
    """The reduced (height, width) of a large image, or None when it stays."""
    if height > SHRINK_OVER and width > SHRINK_OVER:
        return round(height * SHRINK_FACTOR), round(width * SHRINK_FACTOR)
    return None


class ISICDataset(Dataset):
    """One "lesion" instance per dermoscopy image."""

    def load_isic(self, root: str, subset: str = "train", layout: str = "auto",
                  split: str = "seeded", shrink_large: bool = False,
                  validate: bool = False, seed: int = 0) -> None:
        """Add the images of one subset.

        Args:
            root: the dataset folder (see the module docstring).
            subset: "train", "val", "test" or "all".
            layout: "auto", "2018" or "plain".
            split: "seeded" (by image; byte-identical image files share a subset) or
                "official" (2018 layout only).
            shrink_large: reduce images over 700x700 to 25%.
            validate: read every mask now; skip (with a warning) images whose mask is
                empty, unreadable or of another size, instead of failing later.
            seed: the split seed.
        """
        self.add_class(SOURCE, 1, "lesion")
        if layout == "auto":
            layout = detect_layout(root)
        if layout not in LAYOUTS:
            raise ValueError(f"unknown ISIC layout {layout!r}; expected 'auto' or {LAYOUTS}")
        if split not in ("seeded", "official"):
            raise ValueError(f"unknown split {split!r}; expected 'seeded' or 'official'")
        if layout == "plain":
            if split == "official":
                raise ValueError("split='official' needs the ISIC 2018 folders; "
                                 f"{root} has the plain images/ + masks/ layout")
            folders = [(os.path.join(root, "images"), os.path.join(root, "masks"))]
        elif split == "official":
            if subset not in list(OFFICIAL) + ["all"]:
                raise ValueError(f"unknown subset {subset!r}; expected one of "
                                 f"{list(OFFICIAL) + ['all']}")
            parts = list(OFFICIAL.values()) if subset == "all" else [OFFICIAL[subset]]
            folders = [official_folders(root, part) for part in parts]
            if subset == "all":
                folders = [f for f in folders if os.path.isdir(f[0]) or os.path.isdir(f[1])]
                if not folders:
                    raise FileNotFoundError(f"no official ISIC 2018 folders in {root}")
        else:
            folders = [official_folders(root, "Training")]
        pairs = [pair for image_dir, mask_dir in folders
                 for pair in find_pairs(image_dir, mask_dir)]
        if split == "seeded":
            pairs = splits.select(pairs, lambda p: p["id"], subset,
                                  [("test", splits.ISIC_TEST_FRACTION),
                                   ("val", splits.ISIC_VAL_FRACTION)], seed=seed,
                                  path_of=lambda p: p["path"])
        for pair in pairs:
            if validate and not self._valid(pair):
                continue
            self.add_image(SOURCE, image_id=pair["id"], path=pair["path"],
                           mask_path=pair["mask_path"], shrink_large=shrink_large)

    @staticmethod
    def _valid(pair: dict) -> bool:
        try:
            mask = binarize(read_gray(pair["mask_path"]), LESION)
            check_same_size(mask, image_size(pair["path"]), pair["mask_path"], pair["path"])
        except (ValueError, FileNotFoundError) as exc:
            logger.warning("skipping %s: %s", pair["id"], exc)
            return False
        if not mask.any():
            logger.warning("skipping %s: empty lesion mask %s", pair["id"], pair["mask_path"])
            return False
        return True

    def load_image(self, image_id: int) -> np.ndarray:
        """[H, W, 3] uint8 RGB, reduced to 25% when shrink_large and over 700x700."""
        info = self.image_info[image_id]
        image = read_image(info["path"])
        if info.get("shrink_large"):
            target = shrink_shape(*image.shape[:2])
            if target is not None:
                image = cv2.resize(image, target[::-1], interpolation=cv2.INTER_AREA)
        return image

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """One lesion: [H, W, 1] bool and class ids [1] int32.

        Raises:
            ValueError: the mask is empty or its size differs from the image's.
        """
        info = self.image_info[image_id]
        if info["source"] != SOURCE:
            return super().load_mask(image_id)
        mask = binarize(read_gray(info["mask_path"]), LESION)
        height, width = image_size(info["path"])
        check_same_size(mask, (height, width), info["mask_path"], info["path"])
        target = shrink_shape(height, width) if info.get("shrink_large") else None
        if target is not None:
            mask = cv2.resize(mask.astype(np.uint8), target[::-1],
                              interpolation=cv2.INTER_NEAREST_EXACT).astype(bool)
        if not mask.any():
            raise ValueError(f"empty lesion mask {info['mask_path']}: no pixel is {LESION}"
                             + (" after shrinking" if target is not None else ""))
        return mask[..., None], np.ones(1, np.int32)

    def image_reference(self, image_id: int) -> str:
        return self.image_info[image_id]["path"]


def binary_samples(root: str, subset: str = "train", **options) -> list[BinarySample]:
    """U-Net samples: each image with its lesion mask; options as load_isic."""
    dataset = ISICDataset()
    dataset.load_isic(root, subset, **options)
    dataset.prepare()
    return samples_from_dataset(dataset)
