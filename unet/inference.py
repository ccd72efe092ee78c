"""Prediction at the original image size, and overlay pictures."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import keras
import numpy as np

from mrcnn.masks import components_by_area
from unet.data import resize_image, to_model_input


def predict_probabilities(model: keras.Model, images: Sequence[np.ndarray],
                          batch_size: int = 4) -> list[np.ndarray]:
    """Foreground probability of each image at its ORIGINAL size.

    Each image is resized to the model's input size (as in training), and the
    probability map is resized back bilinearly; thresholding after this resize gives
    smoother borders than resizing a thresholded mask.

    Args:
        model: a U-Net, input [batch, h, w, C], output [batch, h, w, 1].
        images: [H, W, 3] or [H, W] uint8 arrays, any sizes.

    Returns:
        One [H, W] float32 array in [0, 1] per image.
    """
    _, h, w, channels = model.input_shape
    results = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        x = np.stack([to_model_input(resize_image(im, (h, w)), channels) for im in chunk])
        probs = np.asarray(model.predict_on_batch(x))[..., 0]
        for image, prob in zip(chunk, probs):
            height, width = image.shape[:2]
            results.append(cv2.resize(prob.astype(np.float32), (width, height),
                                      interpolation=cv2.INTER_LINEAR))
    return results


def keep_largest_components(mask: np.ndarray, count: int) -> np.ndarray:
    """`mask` with only its `count` largest 8-connected components, [H, W] bool.

    Two lungs, one lesion: specks the network marks elsewhere (text, a shoulder) go.
    Components of equal area are ranked by their first pixel in raster order.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    labels, order, _ = components_by_area(mask)
    if len(order) <= count:
        return np.asarray(mask, bool).copy()
    return np.isin(labels, order[:count])


def predict_masks(model: keras.Model, images: Sequence[np.ndarray],
                  threshold: float = 0.5, batch_size: int = 4,
                  keep_components: int | None = None) -> list[np.ndarray]:
    """Binary masks at each image's original size: one [H, W] bool per image.

    Args:
        keep_components: keep only this many largest connected components of each
            mask (2 for lungs); None keeps everything.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    masks = [p >= threshold for p in predict_probabilities(model, images, batch_size)]
    if keep_components is not None:
        masks = [keep_largest_components(m, keep_components) for m in masks]
    return masks


def overlay(image: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None,
            alpha: float = 0.4) -> np.ndarray:
    """Picture of a prediction: red tint where predicted, green outline of the truth.

    Args:
        image: [H, W, 3] or [H, W] uint8.
        pred: [H, W] bool.
        gt: optional [H, W] bool ground truth.

    Returns:
        [H, W, 3] uint8 RGB.
    """
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image.copy()
    if pred.shape != rgb.shape[:2] or (gt is not None and gt.shape != rgb.shape[:2]):
        raise ValueError(f"overlay: image {rgb.shape[:2]}, prediction {pred.shape} and "
                         f"ground truth {None if gt is None else gt.shape} differ in size")
    red = np.array([255, 0, 0], np.float32)
    rgb[pred] = ((1 - alpha) * rgb[pred] + alpha * red).astype(np.uint8)
    if gt is not None:
        contours, _ = cv2.findContours(gt.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        rgb = np.ascontiguousarray(rgb)
        cv2.drawContours(rgb, contours, -1, (0, 255, 0), max(1, rgb.shape[0] // 256))
    return rgb


def write_png(path: str | Path, rgb_or_mask: np.ndarray) -> Path:
    """Write an [H, W, 3] RGB uint8 picture or an [H, W] bool mask (0/255) as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = rgb_or_mask
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")
    return path
