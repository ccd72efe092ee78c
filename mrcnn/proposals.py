"""ProposalLayer: RPN outputs to a fixed number of region proposals.

Shape glossary:
    batch           images per step (BATCH_SIZE)
    num_anchors     anchors per image, static
    pre_nms_limit   PRE_NMS_LIMIT, capped at num_anchors
    proposal_count  POST_NMS_ROIS_TRAINING / POST_NMS_ROIS_INFERENCE
Boxes are [..., (y1, x1, y2, x2)] in normalized coordinates.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from mrcnn import ops as mrcnn_ops
from mrcnn.boxes import apply_box_deltas_graph, clip_boxes_graph


class ProposalLayer(keras.layers.Layer):
    """Top anchors by RPN score, refined by their deltas, clipped and NMS'd.

    Matterport's order: keep the `pre_nms_limit` best anchors by foreground
    score (lower anchor index first among equal scores), apply the deltas
    times `rpn_bbox_std_dev`, clip to [0, 1], greedy NMS at `nms_threshold`,
    and zero-pad to `proposal_count`.

    Args:
        proposal_count: proposals per image after NMS.
        nms_threshold: IoU above which the lower-scored box is dropped.
        pre_nms_limit: anchors kept before NMS.
        rpn_bbox_std_dev: 4 numbers, the RPN delta scale (RPN_BBOX_STD_DEV).

    Call arguments:
        inputs: [rpn_probs [batch, num_anchors, 2] (background, foreground),
            rpn_bbox [batch, num_anchors, (dy, dx, log(dh), log(dw))],
            anchors [batch, num_anchors, (y1, x1, y2, x2)] normalized].

    Returns:
        [batch, proposal_count, (y1, x1, y2, x2)] normalized, in descending
        score order; zero-padded (the padding rows are all-zero boxes).
    """

    def __init__(self, proposal_count: int, nms_threshold: float,
                 pre_nms_limit: int, rpn_bbox_std_dev: Sequence[float], **kwargs):
        # Boxes and scores in float32 even under a mixed dtype policy.
        kwargs.setdefault("dtype", mrcnn_ops.OUTPUT_DTYPE)
        super().__init__(**kwargs)
        if int(proposal_count) < 1 or int(pre_nms_limit) < 1:
            raise ValueError(f"ProposalLayer: proposal_count ({proposal_count}) and "
                             f"pre_nms_limit ({pre_nms_limit}) must be >= 1")
        if len(rpn_bbox_std_dev) != 4:
            raise ValueError(f"ProposalLayer: rpn_bbox_std_dev needs 4 numbers; "
                             f"got {rpn_bbox_std_dev!r}")
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(pre_nms_limit)
        self.rpn_bbox_std_dev = [float(v) for v in rpn_bbox_std_dev]

    def call(self, inputs):
        rpn_probs, rpn_bbox, anchors = inputs
        num_anchors = anchors.shape[1]
        if num_anchors is None:
            raise ValueError("ProposalLayer: the number of anchors must be static; "
                             f"got anchors of shape {tuple(anchors.shape)}")
        limit = min(self.pre_nms_limit, num_anchors)
        scores = rpn_probs[:, :, 1]
        scores, ix = mrcnn_ops.top_k(scores, limit)
        deltas = ops.take_along_axis(rpn_bbox, ix[..., None], axis=1)
        deltas = deltas * ops.convert_to_tensor(self.rpn_bbox_std_dev, deltas.dtype)
        anchors = ops.take_along_axis(ops.cast(anchors, deltas.dtype), ix[..., None], axis=1)
        boxes = apply_box_deltas_graph(anchors, deltas)
        boxes = clip_boxes_graph(boxes, ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0],
                                                              boxes.dtype))
        picks, num_valid = mrcnn_ops.non_max_suppression_padded(
            boxes, scores, self.proposal_count, self.nms_threshold)
        proposals = ops.take_along_axis(boxes, picks[..., None], axis=1)
        live = ops.arange(self.proposal_count)[None, :] < num_valid[:, None]
        return ops.where(live[..., None], proposals, ops.zeros_like(proposals))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.proposal_count, 4)

    def get_config(self):
        config = super().get_config()
        config.update({
            "proposal_count": self.proposal_count,
            "nms_threshold": self.nms_threshold,
            "pre_nms_limit": self.pre_nms_limit,
            "rpn_bbox_std_dev": list(self.rpn_bbox_std_dev),
        })
        return config
