"""Instance masks: overlaps, resizing with the image, mini-masks and unmolding.

Shapes:
    masks: [height, width, N], instances last; bool, or values binarised as stated.
    mini-masks: [mini_height, mini_width, N], each mask cropped to its box and
        resized (config.MINI_MASK_SHAPE).
    bbox: [N, (y1, x1, y2, x2)] in pixels, y2/x2 exclusive.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import scipy.ndimage
import skimage.util

from mrcnn._checks import array_arg, masks_arg, pixel_boxes_arg, same_count
from mrcnn.image import resize


def _foreground(masks: np.ndarray) -> np.ndarray:
    # Comparing a bool array with 0.5 would cast every pixel to float64 first.
    return masks if masks.dtype == bool else masks > 0.5


def compute_overlaps_masks(masks1: np.ndarray, masks2: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of masks, binarised with > 0.5.

    Args:
        masks1: [height, width, N1].
        masks2: [height, width, N2].

    Returns:
        [N1, N2] float32; NaN for a pair of empty masks (zero union).
        float64 zeros of shape [N1, N2] when either set is empty, as in matterport.
    """
    masks1 = masks_arg("masks1", masks1)
    masks2 = masks_arg("masks2", masks2)
    if masks1.shape[:2] != masks2.shape[:2]:
        raise ValueError(
            f"masks1 and masks2 must have the same height and width; "
            f"got shapes {masks1.shape} and {masks2.shape}"
        )
    if masks1.shape[-1] == 0 or masks2.shape[-1] == 0:
        return np.zeros((masks1.shape[-1], masks2.shape[-1]))
    fg1 = _foreground(masks1).reshape(-1, masks1.shape[-1])
    fg2 = _foreground(masks2).reshape(-1, masks2.shape[-1])
    # Only pixels inside some mask of both sets can intersect; instances cover a
    # small part of an image, so the matrix product shrinks by orders of magnitude.
    # Counts are exact in float32 (below 2**24 pixels), as in matterport's sums.
    shared = fg1.any(axis=1) & fg2.any(axis=1)
    intersections = fg1[shared].T.astype(np.float32) @ fg2[shared].astype(np.float32)
    area1 = np.count_nonzero(fg1, axis=0).astype(np.float32)
    area2 = np.count_nonzero(fg2, axis=0).astype(np.float32)
    union = area1[:, None] + area2[None, :] - intersections
    with np.errstate(invalid="ignore"):
        return intersections / union


def resize_mask(
    mask: np.ndarray,
    scale: float,
    padding: Sequence[Sequence[int]],
    crop: Sequence[int] | None = None,
) -> np.ndarray:
    """Apply resize_image's scale, then its crop or padding, to instance masks.

    Args:
        mask: [height, width, N].
        scale, padding, crop: as returned by resize_image.

    Returns:
        [H', W', N], same dtype; nearest-neighbour (scipy.ndimage.zoom order 0),
        so each output size is round(side * scale).
    """
    mask = masks_arg("mask", mask)
    with warnings.catch_warnings():
        # zoom warns about its rounding of the output shape; that rounding is the contract.
        warnings.simplefilter("ignore")
        mask = scipy.ndimage.zoom(mask, zoom=[scale, scale, 1], order=0)
    if crop is not None:
        y, x, height, width = crop
        return mask[y:y + height, x:x + width]
    return np.pad(mask, padding, mode="constant", constant_values=0)


def _resize_binary(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    # Bilinear on 0/1 floats, then np.around (halves to even, so 0.5 -> False).
    # Integer masks count as nonzero = 1: read as images, uint8 0/1 would be
    # scaled by 1/255 and vanish.
    if mask.dtype.kind in "iu":
        mask = mask != 0
    return np.around(resize(mask, shape)).astype(bool)


def minimize_mask(bbox: np.ndarray, mask: np.ndarray, mini_shape: Sequence[int]) -> np.ndarray:
    """Crop each mask to its box and resize it to `mini_shape` to save memory.

    Args:
        bbox: [N, (y1, x1, y2, x2)]; extra columns are ignored.
        mask: [height, width, N]; nonzero is foreground.
        mini_shape: (mini_height, mini_width).

    Returns:
        [mini_height, mini_width, N] bool.

    Raises:
        ValueError: a box has zero area (matterport raised a bare Exception).
    """
    bbox = pixel_boxes_arg("bbox", bbox)
    mask = masks_arg("mask", mask)
    same_count("bbox", bbox, "mask", mask, axis_b=2)
    mini_shape = tuple(int(s) for s in mini_shape)
    mini_mask = np.zeros(mini_shape + (mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = bbox[i, :4]
        crop = mask[y1:y2, x1:x2, i]
        if crop.size == 0:
            raise ValueError(
                f"minimize_mask: bbox[{i}] = {bbox[i, :4].tolist()} has zero area inside the "
                f"{mask.shape[:2]} mask; invalid bounding box"
            )
        mini_mask[:, :, i] = _resize_binary(crop.astype(bool), mini_shape)
    return mini_mask


def expand_mask(bbox: np.ndarray, mini_mask: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Inverse of minimize_mask: resize each mini-mask into its box on a full canvas.

    Args:
        bbox: [N, (y1, x1, y2, x2)].
        mini_mask: [mini_height, mini_width, N].
        image_shape: (height, width, ...) of the canvas.

    Returns:
        [height, width, N] bool. A zero-area box leaves its mask empty.
    """
    bbox = pixel_boxes_arg("bbox", bbox)
    mini_mask = masks_arg("mini_mask", mini_mask)
    same_count("bbox", bbox, "mini_mask", mini_mask, axis_b=2)
    mask = np.zeros(tuple(image_shape[:2]) + (mini_mask.shape[-1],), dtype=bool)
    for i in range(mini_mask.shape[-1]):
        y1, x1, y2, x2 = bbox[i, :4]
        if y2 > y1 and x2 > x1:
            mask[y1:y2, x1:x2, i] = _resize_binary(mini_mask[:, :, i], (y2 - y1, x2 - x1))
    return mask


def _bilinear_samples(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """One axis of skimage's bilinear resize: (low neighbour, weight of the high one).

    skimage (scipy.ndimage.zoom, grid mode, mode "constant", cval 0) samples output
    pixel i at (i + 0.5) * source / target - 0.5; a neighbour outside the input
    counts as 0, which is why the edge rows of an upsampled mask are fainter. The
    returned indices point into the input zero-padded by one pixel on each side.

    Returns:
        low [target] intp in [0, source], frac [target] float64 in [0, 1).
    """
    coords = (np.arange(target) + 0.5) * (source / target) - 0.5
    low = np.floor(coords)
    return low.astype(np.intp) + 1, coords - low


def _resize_probabilities(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """mrcnn.image.resize(mask, shape) for a 2-D map, without skimage's overheads.

    Bilinear interpolation is separable: blend pairs of rows, then pairs of columns,
    in float64 as scipy does. The result equals skimage's within one unit in the
    last place of its float dtype (skimage sums the four neighbours in another
    order). No matrix product: BLAS threads cost more than they save at these sizes.
    """
    if mask.dtype == bool:
        mask = mask.astype(np.float64)
    elif mask.dtype.kind != "f":
        mask = skimage.util.img_as_float(mask)  # integer images scale to [0, 1], as skimage
    dtype = np.float32 if mask.dtype in (np.float16, np.float32) else np.float64
    padded = np.pad(mask.astype(np.float64), 1)
    low, frac = _bilinear_samples(mask.shape[0], shape[0])
    rows = padded[low] * (1.0 - frac)[:, None] + padded[low + 1] * frac[:, None]
    low, frac = _bilinear_samples(mask.shape[1], shape[1])
    values = (rows[:, low] * (1.0 - frac) + rows[:, low + 1] * frac).astype(dtype)
    # skimage clips to the input's range, widened to the fill value 0 when the
    # output reaches it (e.g. an all-0.6 mask keeps its faint edges at 0.6).
    lowest, highest = dtype(mask.min()), dtype(mask.max())
    if not lowest <= 0 <= highest and values.min() <= 0 <= values.max():
        lowest, highest = min(lowest, dtype(0)), max(highest, dtype(0))
    return np.clip(values, lowest, highest, out=values)


def unmold_mask(mask: np.ndarray, bbox: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Paste a predicted mask probability map into its box on a full-size canvas.

    Args:
        mask: [mask_height, mask_width] float probabilities (config.MASK_SHAPE).
        bbox: [(y1, x1, y2, x2)] in pixels of the canvas.
        image_shape: (height, width, ...) of the canvas.

    Returns:
        [height, width] bool: bilinear resize to the box (skimage's), then >= 0.5.
    """
    mask = array_arg("mask", mask, ndim=2, layout="[mask_height, mask_width]")
    bbox = pixel_boxes_arg("bbox", bbox, ndim=1)
    full_mask = np.zeros(tuple(image_shape[:2]), dtype=bool)
    _paste(full_mask, mask, bbox)
    return full_mask


def unmold_masks(masks: np.ndarray, boxes: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """unmold_mask for every detection at once, written straight into one array.

    Stacking N full-size canvases from unmold_mask costs N * height * width bytes
    twice over (a 1024x1024 image with 100 detections: 100 MB written twice); here
    each mask writes only its box.

    Args:
        masks: [N, mask_height, mask_width] float probabilities.
        boxes: [N, (y1, x1, y2, x2)] int pixels of the canvas.
        image_shape: (height, width, ...) of the canvas.

    Returns:
        [height, width, N] bool, equal to np.stack([unmold_mask(masks[i], boxes[i],
        image_shape) for i in range(N)], axis=-1).
    """
    masks = array_arg("masks", masks, ndim=3, layout="[N, mask_height, mask_width]")
    boxes = pixel_boxes_arg("boxes", boxes)
    same_count("masks", masks, "boxes", boxes)
    full_masks = np.zeros(tuple(image_shape[:2]) + (len(masks),), dtype=bool)
    for i in range(len(masks)):
        _paste(full_masks[..., i], masks[i], boxes[i])
    return full_masks


def _paste(canvas: np.ndarray, mask: np.ndarray, bbox: np.ndarray) -> None:
    """Write mask, resized to bbox and thresholded at 0.5, into canvas (a view)."""
    y1, x1, y2, x2 = (int(v) for v in bbox[:4])
    if y2 > y1 and x2 > x1:
        canvas[y1:y2, x1:x2] = _resize_probabilities(mask, (y2 - y1, x2 - x1)) >= 0.5


def components_by_area(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 8-connected components of a [H, W] mask, largest first.

    Returns:
        labels: [H, W] int, 0 background, 1..N the components.
        order: [N] component labels by decreasing area; ties keep raster order of the
            components' first pixels.
        areas: [N] pixel count of each label in `order`.
    """
    labels, count = scipy.ndimage.label(mask, structure=np.ones((3, 3), bool))
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-areas, kind="stable")
    return labels, order + 1, areas[order]
