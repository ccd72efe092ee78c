"""Mask files -> boolean masks, shared by the adapters.

Mask PNGs in the wild come as 8-bit grey with anti-aliased edges (resized lung masks),
palette or RGB images, or 0/1 values; ``read_gray`` reduces them all to [H, W] uint8.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError


def _open(path: str) -> Image.Image:
    if not os.path.exists(path):
        raise FileNotFoundError(f"file not found: {path}")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: corrupt or unsupported file "
                         f"({exc})") from exc
    return image


def image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image file, read from its header only."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"file not found: {path}")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {path}: corrupt or unsupported file "
                         f"({exc})") from exc
    return height, width


def read_gray(path: str) -> np.ndarray:
    """Read a mask file as [H, W] uint8 grey levels.

    Palette and RGB files go through their colours (a palette index is not a grey
    level); 16-bit files are scaled to 8 bits; 1-bit files become 0/255.
    """
    image = _open(path)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def binarize(gray: np.ndarray, threshold: int) -> np.ndarray:
    """[H, W] grey levels -> [H, W] bool, True where gray >= threshold.

    A mask stored as 0/1 (max 1) is read as 1 = foreground: thresholding it at 128
    would silently give an empty mask.
    """
    if gray.max(initial=0) == 1:
        return gray == 1
    return gray >= threshold


def check_same_size(mask: np.ndarray, image_shape: tuple[int, ...], mask_path: str,
                    image_path: str) -> None:
    """Raise ValueError when a mask's [H, W] differs from its image's."""
    if tuple(mask.shape[:2]) != tuple(image_shape[:2]):
        raise ValueError(f"mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} but its image "
                         f"{image_path} is {image_shape[0]}x{image_shape[1]} (HxW)")
