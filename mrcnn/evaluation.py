"""Evaluate Mask R-CNN detections on a dataset: per-image scores, mAP, COCO AP, plots.

Per image (one row of the JSON report's "images"):
    iou, dice, isic_jaccard: the union of the predicted instance masks against the
        union of the ground-truth masks, scored by unet.evaluation (the U-Net scores,
        so both models are compared on equal terms). An empty ground truth predicted
        empty scores 1. The mean of `dice` is the SIIM-ACR score, the mean of
        `isic_jaccard` the ISIC 2018 task 1 score.
    max_iou: the best mask IoU of one predicted instance with one ground-truth
        instance (the ISIC seed's "max IoU per image": one lesion, the best of the
        candidate masks); 1 for an empty image predicted empty, else 0 when either
        side has no instance.
    ap50: AP at mask IoU 0.5 with matterport's matching (utils.compute_ap). An image
        without ground truth scores 1 when nothing is detected and 0 otherwise, the
        same empty-image rule as the Dice.
    gt_instances, detections: counts.
Over the dataset (top-level keys of the report):
    summary: the mean of each per-image score ("mean_iou", ..., "mean_ap50", the
        mAP@0.5) and "count".
    map50_images_with_gt: mean ap50 over images with ground truth only, which is
        matterport's mAP when every image has some (None when none does).
    coco: {"AP", "AP50", "AP75"} from pycocotools' COCOeval on the masks ("segm"),
        None where it is undefined (no ground truth at all).
    pr_curve: {"ap", "precisions", "recalls"}: every detection of the dataset ranked by
        score and matched at IoU 0.5 (matterport's matching per image); None when the
        dataset has no ground truth.
`detections` is a sequence of detect() dicts (rois, class_ids, scores, masks [H, W, N]
at the original image size), aligned with `image_ids`.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn import visualize
from mrcnn.boxes import extract_bboxes
from mrcnn.dataset import Dataset
from mrcnn.export import check_detections, coco_annotations, source_image_id
from mrcnn.masks import _foreground
from mrcnn.metrics import _average_precision, compute_matches
from unet import evaluation as mask_scores


def _score(gt_masks: np.ndarray, gt_class_ids: np.ndarray, detection: Mapping,
           iou_threshold: float) -> tuple[dict, np.ndarray, np.ndarray, int]:
    """(score_image row, scores by descending rank, True where that detection matched,
    number of ground truths matched against)."""
    gt_masks = _foreground(np.asarray(gt_masks))
    pred_masks = _foreground(np.asarray(detection["masks"]))
    if (gt_masks.ndim != 3 or pred_masks.ndim != 3
            or gt_masks.shape[:2] != pred_masks.shape[:2]):
        raise ValueError(f"ground-truth masks {gt_masks.shape} and detected masks "
                         f"{pred_masks.shape} must both be [H, W, N] at the image size")
    gt_match, pred_match, overlaps = compute_matches(
        extract_bboxes(gt_masks), gt_class_ids, gt_masks, detection["rois"],
        detection["class_ids"], detection["scores"], pred_masks,
        iou_threshold=iou_threshold)
    if len(gt_match):
        # compute_ap's envelope and area, on the matches computed once for both uses.
        ap = float(_average_precision(gt_match, pred_match)[0])
    else:
        ap = 1.0 if len(pred_match) == 0 else 0.0
    gt_union = gt_masks.any(axis=-1)
    row = mask_scores.score(gt_union, pred_masks.any(axis=-1))
    if overlaps.size:
        # NaN marks a pair of empty masks: no overlap to speak of.
        row["max_iou"] = float(np.nan_to_num(overlaps, nan=0.0).max())
    else:
        row["max_iou"] = 1.0 if len(gt_match) == len(pred_match) == 0 else 0.0
    row["ap50"] = ap
    row["gt_instances"] = int(gt_masks.shape[-1])
    row["detections"] = int(pred_masks.shape[-1])
    ranked_scores = np.sort(np.asarray(detection["scores"])[:len(pred_match)])[::-1]
    return row, ranked_scores, pred_match > -1, len(gt_match)


def score_image(gt_masks: np.ndarray, gt_class_ids: np.ndarray, detection: Mapping,
                iou_threshold: float = 0.5) -> dict[str, float]:
    """Scores of one image (see the module docstring).

    Args:
        gt_masks: [H, W, N] ground-truth instances.
        gt_class_ids: [N].
        detection: detect()'s dict for the image; masks [H, W, M].
        iou_threshold: the mask IoU of a match for ap50.

    Returns:
        {"iou", "dice", "isic_jaccard", "max_iou", "ap50", "gt_instances", "detections"}.
    """
    return _score(gt_masks, gt_class_ids, detection, iou_threshold)[0]


def _quiet(function, *args):
    # pycocotools prints progress and tables; the report carries the numbers.
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def coco_metrics(gt_annotations: list[dict], results: list[dict], images: list[dict],
                 categories: list[dict], iou_type: str = "segm") -> dict[str, float | None]:
    """COCO AP, AP50 and AP75 from annotation lists, evaluated in memory.

    Args:
        gt_annotations: coco_annotations() dicts without scores.
        results: coco_annotations() dicts with scores.
        images: [{"id", "height", "width"}] of every evaluated image.
        categories: [{"id", "name"}].
        iou_type: "segm" (masks) or "bbox".

    Returns:
        {"AP": AP@[.5:.95], "AP50", "AP75"}; 0.0 for each when there is ground truth
        but no detection, None when there is no ground truth.
    """
    if not gt_annotations:
        return {"AP": None, "AP50": None, "AP75": None}
    if not results:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    gt = COCO()
    # COCOeval reads a ground-truth id of 0 as "unmatched": ids start at 1.
    gt.dataset = {"images": images, "categories": categories,
                  "annotations": [dict(a, id=i, iscrowd=0)
                                  for i, a in enumerate(gt_annotations, start=1)]}
    _quiet(gt.createIndex)
    detected = _quiet(gt.loadRes, [dict(r) for r in results])
    evaluator = COCOeval(gt, detected, iou_type)
    for step in (evaluator.evaluate, evaluator.accumulate, evaluator.summarize):
        _quiet(step)
    ap, ap50, ap75 = (float(v) for v in evaluator.stats[:3])
    return {name: (None if value < 0 else value)
            for name, value in (("AP", ap), ("AP50", ap50), ("AP75", ap75))}


def _pr_curve(ranked: list[tuple[np.ndarray, np.ndarray]], gt_total: int) -> dict | None:
    if gt_total == 0:
        return None
    scores = np.concatenate([s for s, _ in ranked])
    hits = np.concatenate([h for _, h in ranked])
    # Stable, so equal scores keep image order and the curve is reproducible.
    order = np.argsort(-scores, kind="stable")
    pred_match = np.where(hits[order], 0, -1)
    ap, precisions, recalls = _average_precision(np.full(gt_total, -1), pred_match)
    return {"ap": float(ap), "precisions": precisions.tolist(),
            "recalls": recalls.astype(np.float64).tolist()}


def evaluate(path: str | Path, dataset: Dataset, detections: Sequence[Mapping],
             image_ids: Sequence[int] | None = None, iou_threshold: float = 0.5,
             **extra) -> dict:
    """Score detections against a dataset's ground truth and write the JSON report.

    Args:
        path: the .json report to write (parent folders are created).
        dataset: a prepared Dataset; load_mask gives the ground truth.
        detections: detect() dicts aligned with image_ids.
        image_ids: internal ids (default: all of the dataset's, in order).
        iou_threshold: mask IoU of a match for ap50 and the PR curve.
        extra: JSON-serialisable context stored in the report (command, weights...).

    Returns:
        The report: {"summary": means of the per-image scores and "count",
        "images": [{"id": source image id, scores...}], "map50_images_with_gt",
        "coco", "pr_curve", "iou_threshold", **extra}.
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    check_detections(detections, image_ids)
    if not image_ids:
        raise ValueError("evaluate() got no images")
    rows, ranked, gt_annotations, results, images = [], [], [], [], []
    gt_total = 0
    for image_id, detection in zip(image_ids, detections):
        gt_masks, gt_class_ids = dataset.load_mask(image_id)
        source_id = source_image_id(dataset, image_id)
        try:
            row, ranked_scores, hits, gt_count = _score(gt_masks, gt_class_ids,
                                                        detection, iou_threshold)
        except ValueError as exc:
            raise ValueError(f"image {source_id!r} (internal id {image_id}): {exc}") from exc
        rows.append({"id": source_id, **row})
        ranked.append((ranked_scores, hits))
        gt_total += gt_count
        height, width = np.shape(gt_masks)[:2]
        # Internal ids: unique across sources, which source ids need not be.
        images.append({"id": int(image_id), "height": int(height), "width": int(width)})
        gt_annotations += coco_annotations(int(image_id), gt_masks, gt_class_ids)
        results += coco_annotations(int(image_id), detection["masks"],
                                    detection["class_ids"], scores=detection["scores"],
                                    boxes=detection["rois"])
    categories = [{"id": int(c), "name": dataset.class_names[c]}
                  for c in dataset.class_ids if c != 0]
    with_gt = [r["ap50"] for r in rows if r["gt_instances"]]
    return mask_scores.write_report(
        path, rows,
        map50_images_with_gt=float(np.mean(with_gt)) if with_gt else None,
        coco=coco_metrics(gt_annotations, results, images, categories),
        pr_curve=_pr_curve(ranked, gt_total),
        iou_threshold=iou_threshold, **extra)


def save_plots(report: Mapping, out_dir: str | Path, prefix: str = "") -> dict[str, Path]:
    """PNG plots of a report from evaluate() or unet.evaluation.write_report().

    Writes `{prefix}score_boxplot.png` (per-image iou, dice and, when present, max_iou)
    and, when the report has a PR curve, `{prefix}pr_curve.png`.

    Returns:
        {"score_boxplot": path[, "pr_curve": path]}.
    """
    out_dir = Path(out_dir)
    rows = report["images"]
    series = {key: [r[key] for r in rows] for key in ("iou", "dice", "max_iou")
              if rows and key in rows[0]}
    paths = {"score_boxplot": out_dir / f"{prefix}score_boxplot.png"}
    visualize.plot_score_boxplot(series, title=f"Per-image scores ({len(rows)} images)",
                                 save_path=paths["score_boxplot"])
    curve = report.get("pr_curve")
    if curve:
        paths["pr_curve"] = out_dir / f"{prefix}pr_curve.png"
        visualize.plot_precision_recall(curve["ap"], np.asarray(curve["precisions"]),
                                        np.asarray(curve["recalls"]),
                                        save_path=paths["pr_curve"])
    return paths
