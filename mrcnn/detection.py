"""DetectionLayer: classifier outputs to final, per-class NMS'd detections.

Shape glossary:
    batch           images per step
    num_rois        proposals per image (POST_NMS_ROIS_INFERENCE)
    num_classes     NUM_CLASSES, background is class 0
    max_instances   DETECTION_MAX_INSTANCES
Boxes are [..., (y1, x1, y2, x2)] normalized to the molded image.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from mrcnn import ops as mrcnn_ops
from mrcnn.boxes import apply_box_deltas_graph, clip_boxes_graph, norm_boxes_graph
from mrcnn.image_meta import parse_image_meta_graph


class DetectionLayer(keras.layers.Layer):
    """Matterport's refine_detections for a whole batch, with static shapes.

    Per ROI: the class with the highest probability (lowest id among equal
    ones), that class's deltas times `bbox_std_dev` applied to the ROI, the
    box clipped to the image window. ROIs of class 0 or with a score below
    `detection_min_confidence` are dropped; NMS at `detection_nms_threshold`
    runs per class; the `detection_max_instances` best survivors are kept,
    by descending score (lower ROI index first among equal scores).

    Args:
        detection_max_instances: detections per image (zero-padded).
        detection_min_confidence: lowest class score kept (inclusive).
        detection_nms_threshold: IoU above which a same-class box is dropped.
        bbox_std_dev: 4 numbers, the head's delta scale (BBOX_STD_DEV).

    Call arguments:
        inputs: [rois [batch, num_rois, (y1, x1, y2, x2)] normalized,
            mrcnn_class [batch, num_rois, num_classes] probabilities,
            mrcnn_bbox [batch, num_rois, num_classes, (dy, dx, log(dh), log(dw))],
            image_meta [batch, IMAGE_META_SIZE]].

    Returns:
        [batch, max_instances, (y1, x1, y2, x2, class_id, score)] float32,
        boxes normalized; zero-padded (padding rows have class_id 0).
    """

    def __init__(self, detection_max_instances: int, detection_min_confidence: float,
                 detection_nms_threshold: float, bbox_std_dev: Sequence[float],
                 **kwargs):
        # Boxes and scores in float32 even under a mixed dtype policy.
        kwargs.setdefault("dtype", mrcnn_ops.OUTPUT_DTYPE)
        super().__init__(**kwargs)
        if int(detection_max_instances) < 1:
            raise ValueError(f"DetectionLayer: detection_max_instances must be >= 1; "
                             f"got {detection_max_instances}")
        if len(bbox_std_dev) != 4:
            raise ValueError(f"DetectionLayer: bbox_std_dev needs 4 numbers; "
                             f"got {bbox_std_dev!r}")
        self.detection_max_instances = int(detection_max_instances)
        self.detection_min_confidence = float(detection_min_confidence)
        self.detection_nms_threshold = float(detection_nms_threshold)
        self.bbox_std_dev = [float(v) for v in bbox_std_dev]

    def call(self, inputs):
        rois, probs, deltas, image_meta = inputs
        meta = parse_image_meta_graph(image_meta)
        # One molded shape per batch (matterport reads image 0's); windows
        # are per image.
        window = norm_boxes_graph(meta["window"], meta["image_shape"][0, :2])

        class_ids = ops.cast(ops.argmax(probs, axis=-1), "int32")
        scores = ops.take_along_axis(probs, class_ids[..., None], axis=-1)[..., 0]
        deltas = ops.take_along_axis(deltas, class_ids[..., None, None], axis=2)[:, :, 0]
        deltas = deltas * ops.convert_to_tensor(self.bbox_std_dev, deltas.dtype)
        boxes = apply_box_deltas_graph(ops.cast(rois, deltas.dtype), deltas)
        boxes = clip_boxes_graph(boxes, window)

        wanted = (class_ids > 0) & (scores >= self.detection_min_confidence)
        # -inf with score_threshold=-inf (strict >) removes the unwanted ROIs
        # from NMS altogether.
        nms_scores = ops.where(wanted, scores, float("-inf"))
        count = self.detection_max_instances
        picks, num_valid = mrcnn_ops.non_max_suppression_padded(
            boxes, nms_scores, count, self.detection_nms_threshold,
            class_ids=class_ids)
        detections = ops.concatenate([
            boxes,
            ops.cast(class_ids, boxes.dtype)[..., None],
            ops.cast(scores, boxes.dtype)[..., None],
        ], axis=-1)
        detections = ops.take_along_axis(detections, picks[..., None], axis=1)
        live = ops.arange(count)[None, :] < num_valid[:, None]
        return ops.where(live[..., None], detections, ops.zeros_like(detections))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.detection_max_instances, 6)

    def get_config(self):
        config = super().get_config()
        config.update({
            "detection_max_instances": self.detection_max_instances,
            "detection_min_confidence": self.detection_min_confidence,
            "detection_nms_threshold": self.detection_nms_threshold,
            "bbox_std_dev": list(self.bbox_std_dev),
        })
        return config
