"""Image resizing, padding and cropping to the network input, and mean-pixel molding.

``resize_image`` returns what later stages need to map results back:
``window`` [(y1, x1, y2, x2)] is the image inside the padding, ``scale`` the resize
factor, ``padding`` [(top, bottom), (left, right), (0, 0)] and ``crop``
(y, x, height, width) or None.
"""
from __future__ import annotations

import random
from typing import Any, Sequence

import numpy as np
import skimage.transform

from mrcnn._checks import array_arg

RESIZE_MODES = ("none", "square", "pad64", "crop")


def resize(
    image: np.ndarray,
    output_shape: Sequence[int],
    order: int = 1,
    mode: str = "constant",
    cval: float = 0,
    clip: bool = True,
    preserve_range: bool = False,
    anti_aliasing: bool = False,
    anti_aliasing_sigma: Any = None,
) -> np.ndarray:
    """skimage.transform.resize with matterport's defaults (bilinear, no anti-aliasing).

    Bool images are converted to float64 0/1 first: matterport was written for
    scikit-image < 0.17, which did that silently, while scikit-image >= 0.19
    refuses bool input with order > 0. Matterport's masks depend on that result.

    Returns:
        The resized image, float (float32 for float32 input, else float64) when
        order > 0, unless preserve_range keeps the values of an integer image.
    """
    if image.dtype == bool and order > 0:
        image = image.astype(np.float64)
    return skimage.transform.resize(
        image,
        output_shape,
        order=order,
        mode=mode,
        cval=cval,
        clip=clip,
        preserve_range=preserve_range,
        anti_aliasing=anti_aliasing,
        anti_aliasing_sigma=anti_aliasing_sigma,
    )


def _center_pad(size: int, target: int) -> tuple[int, int]:
    before = (target - size) // 2
    return before, target - size - before


def resize_image(
    image: np.ndarray,
    min_dim: int | None = None,
    max_dim: int | None = None,
    min_scale: float | None = None,
    mode: str = "square",
) -> tuple[np.ndarray, tuple[int, int, int, int], float, list, tuple | None]:
    """Resize an image keeping its aspect ratio, then pad or crop it (matterport's modes).

    Modes:
        none: returned unchanged.
        square: scaled so the short side is at least `min_dim` and the long side at
            most `max_dim`, then zero-padded to [max_dim, max_dim].
        pad64: scaled up to `min_dim` / `min_scale`, then zero-padded so both sides
            are multiples of 64 (`min_dim` must be a multiple of 64).
        crop: scaled up to `min_dim` / `min_scale`, then a random
            [min_dim, min_dim] crop (offsets from Python's `random`).

    Sizes are round(side * scale) with Python's round (halves to even). `scale`
    stays the int 1 when nothing was resized, which keeps compose_image_meta int64.

    Args:
        image: [height, width, channels].
        min_dim: the short side is scaled up to at least this.
        max_dim: in "square" mode, the long side is kept within this and the output side.
        min_scale: a floor on the scale.
        mode: one of "none", "square", "pad64", "crop".

    Returns:
        image: resized [H', W', channels] with the input dtype (float values from the
            bilinear resize are truncated back, as matterport's astype did).
        window: (y1, x1, y2, x2) of the image inside the output, y2/x2 exclusive.
        scale: the resize factor.
        padding: [(top, bottom), (left, right), (0, 0)].
        crop: (y, x, height, width) in "crop" mode, else None.
    """
    image = array_arg("image", image, ndim=(2, 3), layout="[height, width, channels]")
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {RESIZE_MODES}; got {mode!r}")
    image_dtype = image.dtype
    height, width = image.shape[:2]
    window = (0, 0, height, width)
    scale = 1
    padding = [(0, 0), (0, 0), (0, 0)]
    crop = None
    if mode == "none":
        return image, window, scale, padding, crop

    if mode == "square" and not max_dim:
        raise ValueError(f"resize_image: mode 'square' needs max_dim; got {max_dim!r}")
    if mode == "pad64" and (not min_dim or min_dim % 64):
        raise ValueError(f"resize_image: mode 'pad64' needs min_dim a multiple of 64; got {min_dim!r}")
    if mode == "crop" and not min_dim:
        raise ValueError(f"resize_image: mode 'crop' needs min_dim; got {min_dim!r}")

    if min_dim:
        # max() returns its first argument on a tie, so scale stays the int 1.
        scale = max(1, min_dim / min(height, width))
    if min_scale and scale < min_scale:
        scale = min_scale
    if mode == "square" and round(max(height, width) * scale) > max_dim:
        scale = max_dim / max(height, width)
    if scale != 1:
        image = resize(image, (round(height * scale), round(width * scale)), preserve_range=True)

    height, width = image.shape[:2]
    if mode == "square":
        padding = [_center_pad(height, max_dim), _center_pad(width, max_dim), (0, 0)]
    elif mode == "pad64":
        padding = [_center_pad(height, -(-height // 64) * 64),
                   _center_pad(width, -(-width // 64) * 64), (0, 0)]
    else:  # crop; the scale above already made both sides >= min_dim
        y = random.randint(0, height - min_dim)
        x = random.randint(0, width - min_dim)
        crop = (y, x, min_dim, min_dim)
        image = image[y:y + min_dim, x:x + min_dim]
        window = (0, 0, min_dim, min_dim)
    if mode in ("square", "pad64"):
        image = np.pad(image, padding[: image.ndim], mode="constant", constant_values=0)
        top, left = padding[0][0], padding[1][0]
        window = (top, left, height + top, width + left)
    return image.astype(image_dtype), window, scale, padding, crop


def mold_image(images: np.ndarray, config: Any) -> np.ndarray:
    """Subtract the mean pixel: uint8 RGB to the network's input.

    Args:
        images: [..., IMAGE_CHANNEL_COUNT].
        config: provides MEAN_PIXEL.

    Returns:
        float32 images minus MEAN_PIXEL, in the promoted dtype (float64 with
        matterport's float64 MEAN_PIXEL).
    """
    images = array_arg("images", images, last=len(config.MEAN_PIXEL),
                       layout="[..., IMAGE_CHANNEL_COUNT]")
    return images.astype(np.float32) - config.MEAN_PIXEL


def unmold_image(normalized_images: np.ndarray, config: Any) -> np.ndarray:
    """Inverse of mold_image: add MEAN_PIXEL back and truncate to uint8 (not rounded).

    Args:
        normalized_images: [..., IMAGE_CHANNEL_COUNT].
        config: provides MEAN_PIXEL.

    Returns:
        uint8 images, same shape.
    """
    normalized_images = array_arg("normalized_images", normalized_images,
                                  last=len(config.MEAN_PIXEL),
                                  layout="[..., IMAGE_CHANNEL_COUNT]")
    return (normalized_images + config.MEAN_PIXEL).astype(np.uint8)
