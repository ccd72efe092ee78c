"""DetectionTargetLayer: sample training ROIs and their class, box and mask targets.

Matterport's rules (``detection_targets_graph``), with static shapes:

* Zero proposals and zero gt boxes are padding. Gt with a negative class id are crowds:
  they are never targets, and a proposal with IoU >= 0.001 with a crowd is never a
  negative.
* Positive: IoU >= 0.5 with some non-crowd gt. Negative: max IoU < 0.5 and not in a
  crowd.
* ``P = min(#positives, int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO))`` positives are
  drawn at random, then ``min(#negatives, int(P / ROI_POSITIVE_RATIO) - P)`` negatives
  (computed in float32 as matterport does). An image without positives therefore gets
  no ROI at all: every row is padding.
* Rows are [positives, negatives, zero padding]. Each positive takes the gt it overlaps
  most (the lowest index among equals): class id, deltas / BBOX_STD_DEV, and the gt mask
  cropped to the ROI, resized to MASK_SHAPE and rounded to 0/1.

Matterport shuffles the candidate lists; here each proposal draws a uniform score and
``top_k`` keeps the best-scoring candidates, which picks a uniformly random subset in a
random order with a fixed output size.

Shape glossary:
    batch   IMAGES_PER_GPU
    N       proposals per image (POST_NMS_ROIS_TRAINING), zero-padded
    G       MAX_GT_INSTANCES, zero-padded
    T       TRAIN_ROIS_PER_IMAGE
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

from mrcnn import ops as graph_ops
from mrcnn.boxes import box_refinement_graph, overlaps_graph

_UNIT_BOX = (0.0, 0.0, 1.0, 1.0)


def _negative_count(positive_count, ratio: float):
    """Matterport's ``int(float32(1 / ratio) * float32(P)) - P`` (truncation)."""
    scaled = np.float32(1.0 / ratio) * ops.cast(positive_count, "float32")
    return ops.cast(scaled, "int32") - positive_count


def _take_rows(values, rows):
    """values [batch, M, ...] gathered at rows [batch, T] -> [batch, T, ...]."""
    # Indexing, not reshape: fit traces with an unknown (None) batch axis.
    index = rows[(...,) + (None,) * (len(values.shape) - 2)]
    return ops.take_along_axis(values, index, axis=1)


class DetectionTargetLayer(keras.layers.Layer):
    """Subsamples proposals and builds their class, box and mask targets.

    Args:
        train_rois_per_image: TRAIN_ROIS_PER_IMAGE, rows per image in every output.
        roi_positive_ratio: ROI_POSITIVE_RATIO, in (0, 1].
        mask_shape: MASK_SHAPE, (height, width) of the mask targets.
        use_mini_mask: USE_MINI_MASK; then gt masks are cropped to their gt box
            (MINI_MASK_SHAPE) and the ROI is mapped into the box before cropping.
        bbox_std_dev: BBOX_STD_DEV, 4 numbers dividing the box deltas.
        seed: seed of the sampling; None draws one.

    Call arguments:
        inputs: [proposals, gt_class_ids, gt_boxes, gt_masks]:
            proposals: [batch, N, (y1, x1, y2, x2)] normalized, zero-padded.
            gt_class_ids: [batch, G] int; negative for crowds, 0 for padding.
            gt_boxes: [batch, G, (y1, x1, y2, x2)] normalized, zero-padded.
            gt_masks: [batch, height, width, G] bool or 0/1, full image size or
                MINI_MASK_SHAPE; height and width must be static.

    Returns:
        [rois, target_class_ids, target_deltas, target_masks]:
            rois: [batch, T, (y1, x1, y2, x2)] float32 normalized.
            target_class_ids: [batch, T] int32; 0 for negatives and padding.
            target_deltas: [batch, T, (dy, dx, log(dh), log(dw))] float32, divided by
                bbox_std_dev; 0 except on positives.
            target_masks: [batch, T, MASK_SHAPE[0], MASK_SHAPE[1]] float32 0/1; 0 except
                on positives.
        Padding rows are all zero (a zero ROI).
    """

    def __init__(self, train_rois_per_image: int, roi_positive_ratio: float,
                 mask_shape: Sequence[int], use_mini_mask: bool,
                 bbox_std_dev: Sequence[float], seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if int(train_rois_per_image) < 1:
            raise ValueError(
                f"train_rois_per_image must be >= 1, got {train_rois_per_image}")
        if not 0.0 < float(roi_positive_ratio) <= 1.0:
            raise ValueError(
                f"roi_positive_ratio must be in (0, 1], got {roi_positive_ratio}")
        if len(mask_shape) != 2:
            raise ValueError(f"mask_shape must be (height, width), got {mask_shape!r}")
        if len(bbox_std_dev) != 4:
            raise ValueError(f"bbox_std_dev must have 4 numbers, got {bbox_std_dev!r}")
        self.train_rois_per_image = int(train_rois_per_image)
        self.roi_positive_ratio = float(roi_positive_ratio)
        self.mask_shape = tuple(int(s) for s in mask_shape)
        self.use_mini_mask = bool(use_mini_mask)
        self.bbox_std_dev = tuple(float(s) for s in bbox_std_dev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Python float64 product, as matterport computes it.
        self.max_positives = int(self.train_rois_per_image * self.roi_positive_ratio)

    def _max_negatives(self) -> int:
        counts = np.arange(self.max_positives + 1, dtype=np.float32)
        scaled = (np.float32(1.0 / self.roi_positive_ratio) * counts).astype(np.int32)
        return int((scaled - counts.astype(np.int32)).max())

    def call(self, inputs):
        proposals, gt_class_ids, gt_boxes, gt_masks = inputs
        proposals = ops.cast(proposals, "float32")
        gt_boxes = ops.cast(gt_boxes, "float32")
        gt_class_ids = ops.cast(gt_class_ids, "int32")
        num_proposals, num_gt = proposals.shape[1], gt_boxes.shape[1]
        if num_proposals is None or num_gt is None:
            raise ValueError(
                f"DetectionTargetLayer needs static proposal and gt counts, got proposals "
                f"{tuple(proposals.shape)} and gt_boxes {tuple(gt_boxes.shape)}")
        rows = self.train_rois_per_image

        real_proposal = ops.sum(ops.abs(proposals), axis=-1) > 0
        real_gt = ops.sum(ops.abs(gt_boxes), axis=-1) > 0
        non_crowd = ops.logical_and(real_gt, gt_class_ids > 0)[:, None, :]
        crowd = ops.logical_and(real_gt, gt_class_ids < 0)[:, None, :]

        overlaps = overlaps_graph(proposals, gt_boxes)                     # [batch, N, G]
        target_overlaps = ops.where(non_crowd, overlaps, -1.0)
        roi_iou_max = ops.max(target_overlaps, axis=-1)
        in_crowd = ops.max(ops.where(crowd, overlaps, 0.0), axis=-1) >= 0.001
        positive = ops.logical_and(real_proposal, roi_iou_max >= 0.5)
        negative = real_proposal & (roi_iou_max < 0.5) & ops.logical_not(in_crowd)

        # One uniform score per proposal; positives and negatives are disjoint, so the
        # same draw serves both samples.
        score = keras.random.uniform(ops.shape(real_proposal), seed=self.seed_generator)
        k_pos = max(min(self.max_positives, num_proposals), 1)
        pos_score, pos_index = graph_ops.top_k(ops.where(positive, score, -1.0), k_pos)
        n_pos = ops.minimum(ops.sum(ops.cast(pos_score >= 0, "int32"), axis=-1),
                            self.max_positives)
        k_neg = max(min(self._max_negatives(), num_proposals, rows), 1)
        neg_score, neg_index = graph_ops.top_k(ops.where(negative, score, -1.0), k_neg)
        n_neg = ops.minimum(ops.sum(ops.cast(neg_score >= 0, "int32"), axis=-1),
                            _negative_count(n_pos, self.roi_positive_ratio))

        # Row j: the j-th sampled positive, then the (j - P)-th negative, then padding.
        j = ops.arange(rows, dtype="int32")[None, :]
        n_pos_col, n_neg_col = n_pos[:, None], n_neg[:, None]
        is_pos = j < n_pos_col
        is_sampled = j < n_pos_col + n_neg_col
        batch = ops.shape(proposals)[0]
        from_pos = _take_rows(pos_index, ops.broadcast_to(ops.minimum(j, k_pos - 1),
                                                          (batch, rows)))
        from_neg = _take_rows(neg_index, ops.clip(j - n_pos_col, 0, k_neg - 1))
        source = ops.where(is_pos, from_pos, from_neg)                    # [batch, T]

        rois = ops.where(is_sampled[..., None], _take_rows(proposals, source), 0.0)
        assignment = ops.cast(
            ops.argmax(_take_rows(target_overlaps, source), axis=-1), "int32")
        class_ids = ops.where(is_pos, _take_rows(gt_class_ids, assignment), 0)

        # Rows that are not positive get unit boxes, so no division below sees a zero
        # size; their results are replaced by zeros.
        unit = ops.convert_to_tensor(_UNIT_BOX, "float32")
        pos_rois = ops.where(is_pos[..., None], rois, unit)
        pos_gt_boxes = ops.where(is_pos[..., None], _take_rows(gt_boxes, assignment), unit)
        std = ops.convert_to_tensor(self.bbox_std_dev, "float32")
        deltas = box_refinement_graph(pos_rois, pos_gt_boxes) / std
        deltas = ops.where(is_pos[..., None], deltas, 0.0)

        masks = self._mask_targets(gt_masks, pos_rois, pos_gt_boxes, assignment, num_gt)
        masks = ops.where(is_pos[..., None, None], masks, 0.0)
        return [rois, class_ids, deltas, masks]

    def _mask_targets(self, gt_masks, rois, gt_boxes, assignment, num_gt):
        """[batch, T, mh, mw] rounded crops of each row's assigned gt mask."""
        batch, height, width = ops.shape(gt_masks)[0], gt_masks.shape[1], gt_masks.shape[2]
        if height is None or width is None:
            raise ValueError(
                f"DetectionTargetLayer: gt_masks needs static height and width, got shape "
                f"{tuple(gt_masks.shape)}")
        if self.use_mini_mask:
            # A mini mask spans its gt box: express the ROI in that box's coordinates.
            gt_y1, gt_x1 = gt_boxes[..., 0:1], gt_boxes[..., 1:2]
            gt_h = gt_boxes[..., 2:3] - gt_y1
            gt_w = gt_boxes[..., 3:4] - gt_x1
            rois = ops.concatenate([(rois[..., 0:1] - gt_y1) / gt_h,
                                    (rois[..., 1:2] - gt_x1) / gt_w,
                                    (rois[..., 2:3] - gt_y1) / gt_h,
                                    (rois[..., 3:4] - gt_x1) / gt_w], axis=-1)
        # One image per (batch, gt) pair: [batch * G, height, width, 1].
        per_gt = ops.reshape(ops.transpose(ops.cast(gt_masks, "float32"), (0, 3, 1, 2)),
                             (-1, height, width, 1))
        image_index = assignment + num_gt * ops.arange(batch, dtype="int32")[:, None]
        crops = graph_ops.crop_and_resize(per_gt, ops.reshape(rois, (-1, 4)),
                                          ops.reshape(image_index, (-1,)), self.mask_shape)
        crops = ops.reshape(crops, (batch, self.train_rois_per_image, *self.mask_shape))
        return ops.round(crops)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        rows = self.train_rois_per_image
        return [(batch, rows, 4), (batch, rows), (batch, rows, 4),
                (batch, rows, *self.mask_shape)]

    def compute_output_spec(self, inputs):
        shapes = self.compute_output_shape([x.shape for x in inputs])
        dtypes = ["float32", "int32", "float32", "float32"]
        return [keras.KerasTensor(shape, dtype=dtype) for shape, dtype in zip(shapes, dtypes)]

    def get_config(self):
        config = super().get_config()
        config.update({
            "train_rois_per_image": self.train_rois_per_image,
            "roi_positive_ratio": self.roi_positive_ratio,
            "mask_shape": list(self.mask_shape),
            "use_mini_mask": self.use_mini_mask,
            "bbox_std_dev": list(self.bbox_std_dev),
            "seed": self.seed,
        })
        return config
