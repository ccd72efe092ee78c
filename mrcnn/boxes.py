"""Box math: IoU, NMS, regression deltas and coordinate normalisation.

Numpy functions with matterport's semantics come first; keras.ops twins for the
graph follow at the bottom of the file.

Shapes:
    boxes: [N, (y1, x1, y2, x2)] in pixels, y2 and x2 exclusive, unless said
        "normalized": then (y2 - 1) / (H - 1) as in matterport's norm_boxes.
    deltas: [N, (dy, dx, log(dh), log(dw))].
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mrcnn._checks import array_arg, boxes_arg, masks_arg, same_count


def extract_bboxes(mask: np.ndarray) -> np.ndarray:
    """Tight bounding boxes of instance masks.

    Args:
        mask: [height, width, N], any dtype; nonzero is foreground.

    Returns:
        [N, (y1, x1, y2, x2)] int32, y2/x2 exclusive. An empty mask gives a zero box.
    """
    mask = masks_arg("mask", mask).astype(bool, copy=False)
    height, width = mask.shape[:2]
    # Reduce instance-major planes: with instances last and few of them, numpy's
    # reduction over H and W runs ~50x slower (13 ms vs 0.3 ms at 1024x1024x3).
    planes = np.ascontiguousarray(np.moveaxis(mask, -1, 0))  # [N, height, width]
    rows = planes.any(axis=2)  # [N, height]
    cols = planes.any(axis=1)  # [N, width]
    y1 = rows.argmax(axis=1)
    y2 = height - rows[:, ::-1].argmax(axis=1)
    x1 = cols.argmax(axis=1)
    x2 = width - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([y1, x1, y2, x2], axis=1).astype(np.int32)
    boxes[~rows.any(axis=1)] = 0
    return boxes


def compute_iou(
    box: np.ndarray, boxes: np.ndarray, box_area: float, boxes_area: np.ndarray
) -> np.ndarray:
    """IoU of one box with many; the caller passes the areas (y2 - y1) * (x2 - x1).

    Args:
        box: [(y1, x1, y2, x2)].
        boxes: [N, (y1, x1, y2, x2)].
        box_area: area of `box`.
        boxes_area: [N] areas of `boxes`.

    Returns:
        [N] IoU, in the dtype numpy promotes the inputs to.
    """
    box = array_arg("box", box, ndim=1, last=4, layout="[(y1, x1, y2, x2)]")
    boxes = boxes_arg("boxes", boxes)
    return _iou_one_to_many(box, boxes, box_area, boxes_area)


def _iou_one_to_many(
    box: np.ndarray, boxes: np.ndarray, box_area: float, boxes_area: np.ndarray
) -> np.ndarray:
    # Operand order is matterport's (width * height, box area first): bit-equal results.
    height = np.maximum(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0)
    width = np.maximum(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0)
    intersection = width * height
    return intersection / (box_area + boxes_area - intersection)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def compute_overlaps(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU.

    Args:
        boxes1: [N1, (y1, x1, y2, x2)].
        boxes2: [N2, (y1, x1, y2, x2)].

    Returns:
        [N1, N2] float64 (matterport fills a float64 matrix whatever the box dtype;
        the arithmetic itself runs in the boxes' dtype).
    """
    boxes1 = boxes_arg("boxes1", boxes1)
    boxes2 = boxes_arg("boxes2", boxes2)
    b1 = boxes1[:, None, :]
    b2 = boxes2[None, :, :]
    height = np.maximum(np.minimum(b2[..., 2], b1[..., 2]) - np.maximum(b2[..., 0], b1[..., 0]), 0)
    width = np.maximum(np.minimum(b2[..., 3], b1[..., 3]) - np.maximum(b2[..., 1], b1[..., 1]), 0)
    intersection = width * height
    # Same operand order as matterport (area of boxes2 first) keeps results bit-equal.
    union = _areas(boxes2)[None, :] + _areas(boxes1)[:, None] - intersection
    return (intersection / union).astype(np.float64, copy=False)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS: keep the best box, drop the others whose IoU with it is > threshold.

    Args:
        boxes: [N, (y1, x1, y2, x2)]; integer boxes are cast to float32 first.
        scores: [N].
        threshold: IoU above which (strictly) a lower-scored box is removed.

    Returns:
        [K] int32 indices of the kept boxes, by descending score. Ties keep numpy's
        default (unstable) argsort order, as matterport did.
    """
    boxes = boxes_arg("boxes", boxes)
    scores = array_arg("scores", scores, ndim=1, layout="[N]")
    same_count("boxes", boxes, "scores", scores)
    if boxes.dtype.kind != "f":
        boxes = boxes.astype(np.float32)
    order = scores.argsort()[::-1]
    ordered = boxes[order]
    areas = _areas(ordered)
    alive = np.ones(len(order), dtype=bool)
    keep = []
    for position in range(len(order)):
        if not alive[position]:
            continue
        keep.append(order[position])
        rest = position + 1 + np.flatnonzero(alive[position + 1:])
        if rest.size:
            iou = _iou_one_to_many(ordered[position], ordered[rest], areas[position], areas[rest])
            alive[rest[iou > threshold]] = False
    return np.array(keep, dtype=np.int32)


def apply_box_deltas(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Shift and scale boxes by regression deltas.

    Args:
        boxes: [N, (y1, x1, y2, x2)] in pixels; y2, x2 exclusive.
        deltas: [N, (dy, dx, log(dh), log(dw))], already scaled by BBOX_STD_DEV.

    Returns:
        [N, (y1, x1, y2, x2)] float32, in the same coordinates as `boxes`.
    """
    boxes = boxes_arg("boxes", boxes).astype(np.float32)
    deltas = array_arg("deltas", deltas, ndim=2, last=4, layout="[N, (dy, dx, log(dh), log(dw))]")
    same_count("boxes", boxes, "deltas", deltas)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    # Each step is rounded to float32 like matterport's in-place updates, even
    # when the deltas are float64, so results agree to the last bit.
    center_y = (boxes[:, 0] + 0.5 * height + deltas[:, 0] * height).astype(np.float32)
    center_x = (boxes[:, 1] + 0.5 * width + deltas[:, 1] * width).astype(np.float32)
    height = (height * np.exp(deltas[:, 2])).astype(np.float32)
    width = (width * np.exp(deltas[:, 3])).astype(np.float32)
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return np.stack([y1, x1, y1 + height, x1 + width], axis=1)


def box_refinement(box: np.ndarray, gt_box: np.ndarray) -> np.ndarray:
    """Deltas that turn `box` into `gt_box`; the inverse of apply_box_deltas.

    Args:
        box: [N, (y1, x1, y2, x2)].
        gt_box: [N, (y1, x1, y2, x2)], matched row by row.

    Returns:
        [N, (dy, dx, log(dh), log(dw))] float32, not divided by BBOX_STD_DEV.
    """
    box = boxes_arg("box", box).astype(np.float32)
    gt_box = boxes_arg("gt_box", gt_box).astype(np.float32)
    same_count("box", box, "gt_box", gt_box)
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    dy = ((gt_box[:, 0] + 0.5 * gt_height) - (box[:, 0] + 0.5 * height)) / height
    dx = ((gt_box[:, 1] + 0.5 * gt_width) - (box[:, 1] + 0.5 * width)) / width
    return np.stack([dy, dx, np.log(gt_height / height), np.log(gt_width / width)], axis=1)


def _norm_scale_shift(shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    if len(shape) < 2:
        raise ValueError(f"shape must be (height, width); got {shape!r}")
    height, width = int(shape[0]), int(shape[1])
    return np.array([height - 1, width - 1, height - 1, width - 1]), np.array([0, 0, 1, 1])


def norm_boxes(boxes: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Pixel boxes to normalized coordinates.

    Args:
        boxes: [..., (y1, x1, y2, x2)] in pixels (a single window works too).
        shape: (height, width) of the image.

    Returns:
        [..., (y1, x1, y2, x2)] float32: y1 / (H - 1), x1 / (W - 1),
        (y2 - 1) / (H - 1), (x2 - 1) / (W - 1).
    """
    boxes = array_arg("boxes", boxes, last=4, layout="[..., (y1, x1, y2, x2)]")
    scale, shift = _norm_scale_shift(shape)
    return ((boxes.astype(np.float64) - shift) / scale).astype(np.float32)


def denorm_boxes(boxes: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Normalized boxes back to pixels; the inverse of norm_boxes.

    Args:
        boxes: [..., (y1, x1, y2, x2)] normalized.
        shape: (height, width) of the image.

    Returns:
        [..., (y1, x1, y2, x2)] int32 pixels, rounded half to even (np.around).
    """
    boxes = array_arg("boxes", boxes, last=4, layout="[..., (y1, x1, y2, x2)]")
    scale, shift = _norm_scale_shift(shape)
    return np.around(boxes.astype(np.float64) * scale + shift).astype(np.int32)


def trim_zeros(x: np.ndarray) -> np.ndarray:
    """Drop every all-zero row (padding), wherever it is.

    Args:
        x: [N, C], e.g. zero-padded [N, (y1, x1, y2, x2)] boxes.

    Returns:
        [M, C], M <= N, the non-zero rows in order.
    """
    x = array_arg("x", x, ndim=2, layout="[N, C]")
    return x[~np.all(x == 0, axis=1)]


# ---------------------------------------------------------------------------
# keras.ops twins for the graph (batched: any leading axes, static shapes)
# ---------------------------------------------------------------------------
# keras is imported when a graph function runs, not with this module: the numpy half
# above serves data-loading workers and mrcnn.utils users, who should not pay the
# seconds it takes to import a backend.


def _ops():
    from keras import ops

    return ops


def apply_box_deltas_graph(boxes, deltas):
    """Graph twin of apply_box_deltas.

    Args:
        boxes: [..., (y1, x1, y2, x2)].
        deltas: [..., (dy, dx, log(dh), log(dw))], already scaled by the std dev.

    Returns:
        [..., (y1, x1, y2, x2)] in the coordinates of `boxes`.
    """
    ops = _ops()
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    center_y = boxes[..., 0] + 0.5 * height + deltas[..., 0] * height
    center_x = boxes[..., 1] + 0.5 * width + deltas[..., 1] * width
    height = height * ops.exp(deltas[..., 2])
    width = width * ops.exp(deltas[..., 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return ops.stack([y1, x1, y1 + height, x1 + width], axis=-1)


def clip_boxes_graph(boxes, window):
    """Clamp every coordinate into a window.

    Args:
        boxes: [..., N, (y1, x1, y2, x2)].
        window: [..., (y1, x1, y2, x2)], one per leading index of `boxes`
            (or a single [4] for all).

    Returns:
        [..., N, (y1, x1, y2, x2)]; boxes outside the window collapse onto its edge.
    """
    ops = _ops()
    window = ops.expand_dims(ops.cast(window, boxes.dtype), axis=-2)
    low = ops.concatenate([window[..., :2], window[..., :2]], axis=-1)
    high = ops.concatenate([window[..., 2:], window[..., 2:]], axis=-1)
    return ops.maximum(ops.minimum(boxes, high), low)


def _norm_scale_shift_graph(shape):
    ops = _ops()
    shape = ops.cast(shape, "float32")
    height, width = shape[..., 0:1], shape[..., 1:2]
    scale = ops.concatenate([height, width, height, width], axis=-1) - 1.0
    return scale, ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], "float32")


def norm_boxes_graph(boxes, shape):
    """Graph twin of norm_boxes.

    Args:
        boxes: [..., (y1, x1, y2, x2)] in pixels.
        shape: [(height, width)] of the image, or [..., 2] broadcastable to `boxes`.

    Returns:
        [..., (y1, x1, y2, x2)] float32 normalized.
    """
    ops = _ops()
    scale, shift = _norm_scale_shift_graph(shape)
    return (ops.cast(boxes, "float32") - shift) / scale


def denorm_boxes_graph(boxes, shape):
    """Graph twin of denorm_boxes.

    Args:
        boxes: [..., (y1, x1, y2, x2)] normalized.
        shape: [(height, width)], or [..., 2] broadcastable to `boxes`.

    Returns:
        [..., (y1, x1, y2, x2)] int32 pixels, rounded half to even.
    """
    ops = _ops()
    scale, shift = _norm_scale_shift_graph(shape)
    return ops.cast(ops.round(ops.cast(boxes, "float32") * scale + shift), "int32")


def overlaps_graph(boxes1, boxes2):
    """Pairwise IoU, graph twin of compute_overlaps.

    Args:
        boxes1: [..., N1, (y1, x1, y2, x2)].
        boxes2: [..., N2, (y1, x1, y2, x2)], same leading axes.

    Returns:
        [..., N1, N2]. Pairs with zero union (e.g. two zero-padding rows) get 0
        rather than matterport's NaN, since static shapes keep padding rows.
    """
    ops = _ops()
    b1 = ops.expand_dims(boxes1, axis=-2)
    b2 = ops.expand_dims(boxes2, axis=-3)
    y1 = ops.maximum(b1[..., 0], b2[..., 0])
    x1 = ops.maximum(b1[..., 1], b2[..., 1])
    y2 = ops.minimum(b1[..., 2], b2[..., 2])
    x2 = ops.minimum(b1[..., 3], b2[..., 3])
    intersection = ops.maximum(x2 - x1, 0.0) * ops.maximum(y2 - y1, 0.0)
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    union = area1 + area2 - intersection
    positive = union > 0
    return ops.where(positive, intersection / ops.where(positive, union, 1.0), 0.0)


def box_refinement_graph(box, gt_box):
    """Deltas that turn `box` into `gt_box` (graph twin of box_refinement).

    Args:
        box, gt_box: [..., (y1, x1, y2, x2)] of positive height and width.

    Returns:
        [..., (dy, dx, log(dh), log(dw))] float32, not divided by BBOX_STD_DEV.
    """
    ops = _ops()
    height = box[..., 2] - box[..., 0]
    width = box[..., 3] - box[..., 1]
    gt_height = gt_box[..., 2] - gt_box[..., 0]
    gt_width = gt_box[..., 3] - gt_box[..., 1]
    dy = ((gt_box[..., 0] + 0.5 * gt_height) - (box[..., 0] + 0.5 * height)) / height
    dx = ((gt_box[..., 1] + 0.5 * gt_width) - (box[..., 1] + 0.5 * width)) / width
    return ops.stack([dy, dx, ops.log(gt_height / height), ops.log(gt_width / width)],
                     axis=-1)
