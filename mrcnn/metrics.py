"""Detection metrics with matterport's semantics: mask-IoU matching, AP, AP over a
range of IoU thresholds, and box recall.

Matching follows matterport exactly, quirks included: predictions are taken by
descending score (numpy's default argsort, so ties are not stable); for each
one, ground truths are tried by descending mask IoU, the list is cut where the
IoU falls below `score_threshold` (an IoU cut, despite the name), the search
stops at the first unmatched ground truth under `iou_threshold`, and the first
unmatched ground truth of the same class is taken.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mrcnn._checks import array_arg, boxes_arg, masks_arg
from mrcnn.boxes import compute_overlaps, trim_zeros
from mrcnn.masks import compute_overlaps_masks


def _sorted_overlaps(
    gt_boxes: np.ndarray,
    gt_masks: np.ndarray,
    pred_boxes: np.ndarray,
    pred_class_ids: np.ndarray,
    pred_scores: np.ndarray,
    pred_masks: np.ndarray,
) -> tuple[int, np.ndarray, np.ndarray]:
    """Trim padding, sort predictions by score; -> (gt count, sorted class ids, overlaps)."""
    gt_boxes = boxes_arg("gt_boxes", gt_boxes)
    pred_boxes = boxes_arg("pred_boxes", pred_boxes)
    gt_masks = masks_arg("gt_masks", gt_masks)
    pred_masks = masks_arg("pred_masks", pred_masks)
    pred_class_ids = array_arg("pred_class_ids", pred_class_ids, ndim=1, layout="[N]")
    pred_scores = array_arg("pred_scores", pred_scores, ndim=1, layout="[N]")
    # Padding rows (all-zero boxes) are dropped wherever they are, but scores and
    # masks are cut to the first rows: matterport assumes padding at the end.
    gt_count = trim_zeros(gt_boxes).shape[0]
    pred_count = trim_zeros(pred_boxes).shape[0]
    for name, values, axis, count, boxes_name in (
        ("gt_masks", gt_masks, -1, gt_count, "gt_boxes"),
        ("pred_masks", pred_masks, -1, pred_count, "pred_boxes"),
        ("pred_scores", pred_scores, 0, pred_count, "pred_boxes"),
        ("pred_class_ids", pred_class_ids, 0, pred_count, "pred_boxes"),
    ):
        if values.shape[axis] < count:
            raise ValueError(
                f"{name} has {values.shape[axis]} instances (shape {values.shape}) but "
                f"{boxes_name} has {count} non-zero boxes"
            )
    order = np.argsort(pred_scores[:pred_count])[::-1]
    overlaps = compute_overlaps_masks(pred_masks[..., order], gt_masks[..., :gt_count])
    return gt_count, pred_class_ids[order], overlaps


def _match(
    overlaps: np.ndarray,
    pred_class_ids: np.ndarray,
    gt_class_ids: np.ndarray,
    iou_threshold: float,
    score_threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching on score-sorted overlaps [pred, gt]; -> (gt_match, pred_match)."""
    pred_match = -1 * np.ones([overlaps.shape[0]])
    gt_match = -1 * np.ones([overlaps.shape[1]])
    for i in range(overlaps.shape[0]):
        candidates = np.argsort(overlaps[i])[::-1]
        ious = overlaps[i, candidates]
        low = np.flatnonzero(ious < score_threshold)
        if low.size:
            candidates, ious = candidates[: low[0]], ious[: low[0]]
        free = gt_match[candidates] == -1
        stop = np.flatnonzero(free & (ious < iou_threshold))
        if stop.size:
            candidates, free = candidates[: stop[0]], free[: stop[0]]
        hits = np.flatnonzero(free & (gt_class_ids[candidates] == pred_class_ids[i]))
        if hits.size:
            j = candidates[hits[0]]
            gt_match[j] = i
            pred_match[i] = j
    return gt_match, pred_match


def compute_matches(
    gt_boxes: np.ndarray,
    gt_class_ids: np.ndarray,
    gt_masks: np.ndarray,
    pred_boxes: np.ndarray,
    pred_class_ids: np.ndarray,
    pred_scores: np.ndarray,
    pred_masks: np.ndarray,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match predictions to ground truth by mask IoU (see the module docstring).

    Args:
        gt_boxes: [N, (y1, x1, y2, x2)], may be zero-padded at the end.
        gt_class_ids: [N].
        gt_masks: [height, width, N].
        pred_boxes: [M, (y1, x1, y2, x2)], may be zero-padded at the end.
        pred_class_ids: [M].
        pred_scores: [M].
        pred_masks: [height, width, M].
        iou_threshold: minimum mask IoU of a match.
        score_threshold: ground truths with IoU below it are not considered.

    Returns:
        gt_match: [N'] float64, index into the score-sorted predictions of the
            match of each ground truth, or -1.
        pred_match: [M'] float64, in score-sorted order, the matched ground
            truth index, or -1.
        overlaps: [M', N'] mask IoUs, rows in score-sorted order.
    """
    gt_class_ids = array_arg("gt_class_ids", gt_class_ids, ndim=1, layout="[N]")
    gt_count, sorted_class_ids, overlaps = _sorted_overlaps(
        gt_boxes, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks
    )
    gt_match, pred_match = _match(
        overlaps, sorted_class_ids, gt_class_ids, iou_threshold, score_threshold
    )
    return gt_match, pred_match, overlaps


def _average_precision(gt_match: np.ndarray, pred_match: np.ndarray) -> tuple:
    hits = np.cumsum(pred_match > -1)
    precisions = hits / (np.arange(len(pred_match)) + 1)
    # The recall is rounded to float32 before being widened, as matterport's was.
    with np.errstate(divide="ignore", invalid="ignore"):
        recalls = hits.astype(np.float32) / len(gt_match)
    precisions = np.concatenate([[0], precisions, [0]])
    recalls = np.concatenate([[0], recalls, [1]])
    # Precision envelope: the best precision at this recall or any higher one.
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    steps = np.flatnonzero(recalls[:-1] != recalls[1:]) + 1
    mean_ap = np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps])
    return mean_ap, precisions, recalls


def compute_ap(
    gt_boxes: np.ndarray,
    gt_class_ids: np.ndarray,
    gt_masks: np.ndarray,
    pred_boxes: np.ndarray,
    pred_class_ids: np.ndarray,
    pred_scores: np.ndarray,
    pred_masks: np.ndarray,
    iou_threshold: float = 0.5,
) -> tuple[np.float64, np.ndarray, np.ndarray, np.ndarray]:
    """Average precision at one mask-IoU threshold (area under the precision envelope).

    Args: as compute_matches.

    Returns:
        mAP: np.float64.
        precisions: [M' + 2] float64, the envelope, with 0 added at both ends.
        recalls: [M' + 2] float64, with 0 and 1 added at the ends.
        overlaps: [M', N'] as compute_matches.
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold,
    )
    mean_ap, precisions, recalls = _average_precision(gt_match, pred_match)
    return mean_ap, precisions, recalls, overlaps


def compute_ap_range(
    gt_box: np.ndarray,
    gt_class_id: np.ndarray,
    gt_mask: np.ndarray,
    pred_box: np.ndarray,
    pred_class_id: np.ndarray,
    pred_score: np.ndarray,
    pred_mask: np.ndarray,
    iou_thresholds: Sequence[float] | None = None,
    verbose: int = 1,
) -> np.float64:
    """Mean of compute_ap over IoU thresholds (COCO-style AP@[.50:.95] by default).

    Args:
        gt_box ... pred_mask: as compute_matches.
        iou_thresholds: None or empty means np.arange(0.5, 1.0, 0.05), 10 thresholds.
        verbose: print the AP per threshold and the mean, as matterport did.

    Returns:
        The mean AP, np.float64.
    """
    if iou_thresholds is None or len(iou_thresholds) == 0:
        # matterport wrote `iou_thresholds or default`: an empty list means the default.
        iou_thresholds = np.arange(0.5, 1.0, 0.05)
    gt_class_id = array_arg("gt_class_ids", gt_class_id, ndim=1, layout="[N]")
    # The overlaps do not depend on the threshold: compute them once.
    gt_count, sorted_class_ids, overlaps = _sorted_overlaps(
        gt_box, gt_mask, pred_box, pred_class_id, pred_score, pred_mask
    )
    aps = []
    for threshold in iou_thresholds:
        gt_match, pred_match = _match(overlaps, sorted_class_ids, gt_class_id, threshold, 0.0)
        ap = _average_precision(gt_match, pred_match)[0]
        if verbose:
            print(f"AP @{threshold:.2f}:\t {ap:.3f}")
        aps.append(ap)
    mean_ap = np.array(aps).mean()
    if verbose:
        print(f"AP @{iou_thresholds[0]:.2f}-{iou_thresholds[-1]:.2f}:\t {mean_ap:.3f}")
    return mean_ap


def compute_recall(
    pred_boxes: np.ndarray, gt_boxes: np.ndarray, iou: float
) -> tuple[float, np.ndarray]:
    """Box recall: the share of ground truths that are the best match of a prediction.

    Args:
        pred_boxes: [M, (y1, x1, y2, x2)].
        gt_boxes: [N, (y1, x1, y2, x2)].
        iou: a prediction counts when its best box IoU is >= iou.

    Returns:
        recall: float, distinct ground truths hit / N.
        positive_ids: [K] int64 indices of the predictions that count.
    """
    overlaps = compute_overlaps(pred_boxes, gt_boxes)
    if overlaps.shape[1] == 0:
        raise ValueError(f"compute_recall needs at least one ground-truth box; got gt_boxes "
                         f"of shape {np.shape(gt_boxes)}")
    positive_ids = np.flatnonzero(overlaps.max(axis=1) >= iou)
    matched = np.unique(overlaps.argmax(axis=1)[positive_ids])
    return len(matched) / overlaps.shape[1], positive_ids
