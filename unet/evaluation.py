"""Per-image segmentation scores on numpy masks (no Keras), shared by U-Net and Mask R-CNN.

Masks are [H, W] bool (or anything where nonzero means foreground). An empty ground
truth predicted empty scores 1 for IoU and Dice, as in the SIIM challenge; the ISIC
2018 score zeroes any Jaccard below 0.65.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

ISIC_JACCARD_FLOOR = 0.65


def _counts(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth and prediction differ in shape: {gt.shape} vs "
                         f"{pred.shape}; resize the prediction to the image size first")
    return int(np.count_nonzero(gt & pred)), int(np.count_nonzero(gt)), int(
        np.count_nonzero(pred))


def iou(gt: np.ndarray, pred: np.ndarray) -> float:
    """Intersection over union of two [H, W] masks; 1.0 when both are empty."""
    inter, n_gt, n_pred = _counts(gt, pred)
    union = n_gt + n_pred - inter
    return 1.0 if union == 0 else inter / union


def dice(gt: np.ndarray, pred: np.ndarray) -> float:
    """Dice (F1) of two [H, W] masks; 1.0 when both are empty (the SIIM rule)."""
    inter, n_gt, n_pred = _counts(gt, pred)
    total = n_gt + n_pred
    return 1.0 if total == 0 else 2.0 * inter / total


def _isic_floor(jaccard: float) -> float:
    return 0.0 if jaccard < ISIC_JACCARD_FLOOR else jaccard


def isic_jaccard(gt: np.ndarray, pred: np.ndarray) -> float:
    """ISIC 2018 task 1 per-image score: IoU, or 0 when IoU < 0.65."""
    return _isic_floor(iou(gt, pred))


def score(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """All per-image scores of one [H, W] mask pair: iou, dice, isic_jaccard.

    Dice here is the SIIM per-image Dice (empty/empty = 1).
    """
    j = iou(gt, pred)
    return {"iou": j, "dice": dice(gt, pred),
            "isic_jaccard": _isic_floor(j)}


def summarize(per_image: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean of every numeric (int or float) entry over images, plus `count`."""
    rows = list(per_image)
    if not rows:
        raise ValueError("summarize() got no per-image scores")
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float))
            and not isinstance(v, bool)]
    summary = {f"mean_{k}": float(np.mean([r[k] for r in rows])) for k in keys}
    summary["count"] = len(rows)
    return summary


def write_report(path: str | Path, per_image: list[Mapping], **extra) -> dict:
    """Write {"summary": ..., "images": [...], **extra} as JSON and return it.

    Args:
        path: output .json file; parent folders are created.
        per_image: one dict per image, e.g. {"id": ..., "iou": ..., "dice": ...}.
        extra: JSON-serialisable context (command, input size, timings).
    """
    scores = [{k: v for k, v in r.items() if k != "id"} for r in per_image]
    report = {"summary": summarize(scores), "images": list(per_image), **extra}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return report
