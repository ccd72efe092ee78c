"""Detections to files other tools read: COCO results JSON and a SIIM submission CSV.

`detections` everywhere is a sequence of dicts as ``MaskRCNN.detect()`` returns them,
one per image, aligned with `image_ids` (internal dataset ids):
    rois: [N, (y1, x1, y2, x2)] in pixels of the original image,
    class_ids: [N] internal class ids, scores: [N], masks: [H, W, N].
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from mrcnn.dataset import Dataset
from mrcnn.masks import _foreground

SIIM_COLUMNS = ("ImageId", "EncodedPixels")
SIIM_EMPTY = "-1"


def encode_masks(masks: np.ndarray) -> list[dict]:
    """COCO compressed RLE of each instance mask, ready for JSON.

    Args:
        masks: [H, W, N]; bool, or values > 0.5 as foreground.

    Returns:
        N dicts {"size": [H, W], "counts": str}.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [H, W, N]; got shape {masks.shape}")
    if masks.shape[-1] == 0:
        return []
    encoded = mask_utils.encode(np.asfortranarray(_foreground(masks).astype(np.uint8)))
    # pycocotools gives bytes; JSON needs text.
    return [{"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
            for rle in encoded]


def coco_annotations(image_id, masks: np.ndarray, category_ids: Sequence[int],
                     scores: Sequence[float] | None = None,
                     boxes: np.ndarray | None = None) -> list[dict]:
    """COCO annotation dicts (ground truth or results) for the instances of one image.

    Args:
        image_id: the COCO image id to write.
        masks: [H, W, N].
        category_ids: [N] COCO category ids (already mapped).
        scores: [N]; given for results, left out for ground truth.
        boxes: [N, (y1, x1, y2, x2)] for "bbox"; default: the tight box of each mask.

    Returns:
        N dicts with image_id, category_id, segmentation (RLE), area (mask pixels),
        bbox [x, y, width, height] and, with scores, score.
    """
    rles = encode_masks(masks)
    count = len(rles)
    for name, values in (("category_ids", category_ids), ("scores", scores),
                         ("boxes", boxes)):
        if values is not None and len(values) != count:
            raise ValueError(f"{name} has {len(values)} entries but masks has {count} "
                             f"instances (shape {np.shape(masks)})")
    if count == 0:
        return []
    if boxes is None:
        xywh = mask_utils.toBbox([dict(r, counts=r["counts"].encode()) for r in rles])
    else:
        y1, x1, y2, x2 = np.asarray(boxes, dtype=np.float64)[:, :4].T
        xywh = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
    areas = np.count_nonzero(_foreground(np.asarray(masks)), axis=(0, 1))
    annotations = []
    for i, rle in enumerate(rles):
        annotation = {"image_id": image_id, "category_id": int(category_ids[i]),
                      "segmentation": rle, "area": float(areas[i]),
                      "bbox": [float(v) for v in xywh[i]]}
        if scores is not None:
            annotation["score"] = float(scores[i])
        annotations.append(annotation)
    return annotations


def check_detections(detections: Sequence[Mapping], image_ids: Sequence[int]) -> None:
    """Raise a ValueError unless there is one detect() dict per image id."""
    if len(detections) != len(image_ids):
        raise ValueError(f"got {len(detections)} detection dicts for {len(image_ids)} "
                         f"image_ids; pass one detect() result per image")
    for position, result in enumerate(detections):
        missing = {"rois", "class_ids", "scores", "masks"} - set(result)
        if missing:
            raise ValueError(f"detections[{position}] lacks {sorted(missing)}; expected "
                             f"detect()'s dict with rois, class_ids, scores, masks")


def source_image_id(dataset: Dataset, image_id: int):
    """The dataset's own id of an image (image_info["id"]), as plain Python for JSON."""
    value = dataset.image_info[image_id]["id"]
    # Numpy scalars are common as ids and json.dumps refuses them.
    return value.item() if isinstance(value, np.generic) else value


def coco_results(dataset: Dataset, detections: Sequence[Mapping],
                 image_ids: Sequence[int] | None = None) -> list[dict]:
    """COCO results in the dataset's own ids, as matterport's samples/coco build them.

    Args:
        dataset: a prepared Dataset.
        detections: detect() dicts aligned with image_ids.
        image_ids: internal ids (default: all of the dataset's, in order).

    Returns:
        One dict per detection: image_id (the source image id, image_info["id"]),
        category_id (the source class id, through dataset.get_source_class_id),
        bbox [x, y, w, h] from the rois, score, segmentation (RLE), area.
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    check_detections(detections, image_ids)
    results = []
    for image_id, result in zip(image_ids, detections):
        info = dataset.image_info[image_id]
        categories = [dataset.get_source_class_id(int(c), info["source"])
                      for c in result["class_ids"]]
        results += coco_annotations(source_image_id(dataset, image_id), result["masks"],
                                    categories,
                                    scores=result["scores"], boxes=result["rois"])
    return results


def write_coco_results(path: str | Path, dataset: Dataset, detections: Sequence[Mapping],
                       image_ids: Sequence[int] | None = None) -> list[dict]:
    """Write coco_results(...) as a JSON list (COCO.loadRes reads it) and return it."""
    results = coco_results(dataset, detections, image_ids)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    return results


def _siim_encoder() -> Callable[[np.ndarray], str]:
    try:
        from datasets import rle
        return rle.encode
    except (ImportError, AttributeError) as exc:
        # datasets/ is not installed (it would shadow Hugging Face's `datasets`).
        raise ImportError(
            "the SIIM encoder datasets.rle is not importable: run from the repository "
            "root (or put it on sys.path), or pass encode=<mask -> RLE string>") from exc


def siim_rows(image_id: str, masks: np.ndarray, scores: Sequence[float] | None = None,
              min_score: float = 0.0, per_instance: bool = False,
              encode: Callable[[np.ndarray], str] | None = None) -> list[tuple[str, str]]:
    """SIIM submission rows (ImageId, EncodedPixels) of one image.

    Args:
        image_id: the SIIM ImageId.
        masks: [H, W, N] predicted instances at the DICOM's size.
        scores: [N]; instances scoring below min_score are dropped.
        per_instance: one row per instance (the train CSV's layout), else one row with
            their union. Kaggle scored the union of an image's rows, so both score the
            same unless instances overlap; the union is the safe default.
        encode: [H, W] mask -> SIIM RLE string (default: datasets.rle.encode).

    Returns:
        Rows; [(image_id, "-1")] when nothing is kept.
    """
    encode = encode or _siim_encoder()
    masks = _foreground(np.asarray(masks))
    if masks.ndim != 3:
        raise ValueError(f"masks of {image_id} must be [H, W, N]; got shape {masks.shape}")
    if scores is not None:
        if len(scores) != masks.shape[-1]:
            raise ValueError(f"{image_id}: {len(scores)} scores for {masks.shape[-1]} masks")
        masks = masks[..., np.asarray(scores) >= min_score]
    masks = masks[..., masks.any(axis=(0, 1))]
    if masks.shape[-1] == 0:
        return [(image_id, SIIM_EMPTY)]
    if per_instance:
        return [(image_id, encode(masks[..., i])) for i in range(masks.shape[-1])]
    return [(image_id, encode(masks.any(axis=-1)))]


def write_siim_submission(path: str | Path, dataset: Dataset,
                          detections: Sequence[Mapping],
                          image_ids: Sequence[int] | None = None, min_score: float = 0.0,
                          per_instance: bool = False,
                          encode: Callable[[np.ndarray], str] | None = None) -> int:
    """Write a SIIM-ACR submission CSV (header ImageId,EncodedPixels).

    Args:
        path: the .csv to write.
        dataset: a prepared Dataset whose image_info["id"] is the SIIM ImageId.
        detections: detect() dicts aligned with image_ids.
        image_ids: internal ids (default: all of the dataset's).
        min_score, per_instance, encode: as siim_rows.

    Returns:
        The number of rows written (without the header).
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    check_detections(detections, image_ids)
    encode = encode or _siim_encoder()
    rows = []
    for image_id, result in zip(image_ids, detections):
        rows += siim_rows(str(source_image_id(dataset, image_id)), result["masks"],
                          result["scores"], min_score, per_instance, encode)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(SIIM_COLUMNS)
        writer.writerows(rows)
    return len(rows)
