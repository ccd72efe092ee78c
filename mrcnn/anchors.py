"""Anchor boxes for the feature pyramid, in pixel coordinates, and the pyramid's sizes.

Anchors come level by level (P2..P6); within a level, feature-map cells in
row-major order, and for each cell every (ratio, scale) pair, ratio-major.
The graph takes them normalized (boxes.norm_boxes).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def generate_anchors(
    scales: float | Sequence[float],
    ratios: Sequence[float],
    shape: Sequence[int],
    feature_stride: int,
    anchor_stride: int,
) -> np.ndarray:
    """Anchors centred on the cells of one feature map.

    Args:
        scales: side length(s) in pixels of a square anchor.
        ratios: width / height ratios; each keeps the area scale**2.
        shape: (height, width) of the feature map.
        feature_stride: image pixels per feature-map cell.
        anchor_stride: anchor every `anchor_stride` cells.

    Returns:
        [cells * len(ratios) * len(scales), (y1, x1, y2, x2)] float64 pixels,
        centred on (row * feature_stride, col * feature_stride).
    """
    scales_grid, ratios_grid = np.meshgrid(np.asarray(scales), np.asarray(ratios))
    scales_flat = scales_grid.ravel()
    ratios_flat = ratios_grid.ravel()
    if np.any(ratios_flat <= 0):
        raise ValueError(f"ratios must be positive; got {np.asarray(ratios).tolist()}")
    if len(shape) != 2:
        raise ValueError(f"shape must be the feature map's (height, width); got {shape!r}")
    heights = scales_flat / np.sqrt(ratios_flat)
    widths = scales_flat * np.sqrt(ratios_flat)
    centers_y = np.arange(0, shape[0], anchor_stride) * feature_stride
    centers_x = np.arange(0, shape[1], anchor_stride) * feature_stride
    # [rows, cols, anchors per cell]
    cy = centers_y[:, None, None]
    cx = centers_x[None, :, None]
    half_h = 0.5 * heights
    half_w = 0.5 * widths
    grid = (len(centers_y), len(centers_x), len(heights))
    boxes = np.stack(
        [
            np.broadcast_to(cy - half_h, grid),
            np.broadcast_to(cx - half_w, grid),
            np.broadcast_to(cy + half_h, grid),
            np.broadcast_to(cx + half_w, grid),
        ],
        axis=-1,
    )
    return boxes.reshape(-1, 4)


def generate_pyramid_anchors(
    scales: Sequence[float],
    ratios: Sequence[float],
    feature_shapes: Sequence[Sequence[int]] | np.ndarray,
    feature_strides: Sequence[int],
    anchor_stride: int,
) -> np.ndarray:
    """Anchors of every pyramid level, concatenated in level order.

    Args:
        scales: one anchor scale per level, e.g. config.RPN_ANCHOR_SCALES.
        ratios: config.RPN_ANCHOR_RATIOS, shared by all levels.
        feature_shapes: [levels, (height, width)], e.g. compute_backbone_shapes().
        feature_strides: one stride per level, config.BACKBONE_STRIDES.
        anchor_stride: config.RPN_ANCHOR_STRIDE.

    Returns:
        [anchor_count, (y1, x1, y2, x2)] float64 pixels.
    """
    if not len(scales) == len(feature_shapes) == len(feature_strides):
        raise ValueError(
            "scales, feature_shapes and feature_strides need one entry per pyramid level; got "
            f"{len(scales)}, {len(feature_shapes)} and {len(feature_strides)}"
        )
    return np.concatenate(
        [
            generate_anchors(scale, ratios, shape, stride, anchor_stride)
            for scale, shape, stride in zip(scales, feature_shapes, feature_strides)
        ],
        axis=0,
    )


def compute_backbone_shapes(config: Any, image_shape: Sequence[int]) -> np.ndarray:
    """Feature-map sizes of the pyramid levels for an input image.

    Args:
        config: BACKBONE, BACKBONE_STRIDES (and COMPUTE_BACKBONE_SHAPE for a
            callable BACKBONE).
        image_shape: (height, width, ...) of the molded image.

    Returns:
        [levels, (height, width)] int64: ceil(side / stride) for each stride.
    """
    if callable(config.BACKBONE):
        return config.COMPUTE_BACKBONE_SHAPE(image_shape)
    if config.BACKBONE not in ("resnet50", "resnet101"):
        raise ValueError(
            f"config.BACKBONE must be 'resnet50', 'resnet101' or a callable; got {config.BACKBONE!r}"
        )
    return np.array(
        [
            [int(math.ceil(image_shape[0] / stride)), int(math.ceil(image_shape[1] / stride))]
            for stride in config.BACKBONE_STRIDES
        ]
    )
