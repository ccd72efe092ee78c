"""The Mask R-CNN training graph and the Keras model that trains it.

Matterport's training model, with static shapes (B = images per step on one device,
A = anchors, G = MAX_GT_INSTANCES, N = POST_NMS_ROIS_TRAINING, T = TRAIN_ROIS_PER_IMAGE,
K = NUM_CLASSES, m = MINI_MASK_SHAPE with USE_MINI_MASK, else IMAGE_SHAPE[:2]):

    inputs:  input_image [B, H, W, C] molded, input_image_meta [B, IMAGE_META_SIZE],
             input_rpn_match [B, A, 1] int32, input_rpn_bbox [B, RPN_TRAIN_ANCHORS_PER_IMAGE,
             4], input_gt_class_ids [B, G] int32, input_gt_boxes [B, G, (y1, x1, y2, x2)]
             pixels, input_gt_masks [B, m[0], m[1], G] uint8 0/1; with USE_RPN_ROIS False also
             input_roi [B, N, (y1, x1, y2, x2)] int32 pixels.
    outputs: rpn_class_logits, rpn_class, rpn_bbox [B, A, ...], mrcnn_class_logits,
             mrcnn_class [B, T, K], mrcnn_bbox [B, T, K, 4], mrcnn_mask [B, P, h, w, K]
             for the first P = int(T * ROI_POSITIVE_RATIO) ROIs (matterport: all T),
             ROI [B, N, 4], output_rois [B, T, 4], then the five losses (scalars) named
             rpn_class_loss, rpn_bbox_loss, mrcnn_class_loss, mrcnn_bbox_loss,
             mrcnn_mask_loss, as matterport's 14 outputs.

The mask head runs only on the first P ROIs, the only rows that can be positive
(DetectionTargetLayer puts positives first): the loss and gradients are matterport's,
at a third of the mask head's cost. With TRAIN_BN True the mask head's BatchNorm
statistics are then those of these rows, where matterport's included the padding.

The losses are graph outputs; ``TrainingModel.compute_loss`` weighs them by
LOSS_WEIGHTS, adds matterport's L2 weight decay over the trainable weights, and logs
each under its name. Keras 3 has no ``add_loss`` on symbolic tensors, hence the custom
``compute_loss``; ``fit`` keeps Keras's own train step, so it compiles with XLA on
TensorFlow, under ``jax.jit`` on JAX, and runs under a distribution strategy.
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
from keras import ops

from mrcnn import losses as loss_fns
from mrcnn.boxes import norm_boxes_graph
from mrcnn.heads import classifier_head, mask_head
from mrcnn.image_meta import parse_image_meta_graph
from mrcnn.proposals import ProposalLayer
from mrcnn.roi_align import PyramidROIAlign
from mrcnn.rpn import build_rpn_model, rpn_outputs
from mrcnn.targets import DetectionTargetLayer


@keras.saving.register_keras_serializable(package="mrcnn")
class ConstantAnchors(keras.layers.Layer):
    """The anchors of the training image size, repeated for each image of the batch.

    Replaces matterport's Lambda over a numpy array (its ``anchors`` layer); it owns no
    weights, so weight files are unaffected.

    Args:
        anchors: [A, (y1, x1, y2, x2)] normalized (MaskRCNN.get_anchors).

    Call arguments:
        inputs: any tensor whose first axis is the batch (input_image).

    Returns:
        [batch, A, (y1, x1, y2, x2)] float32.
    """

    def __init__(self, anchors, **kwargs):
        super().__init__(**kwargs)
        self.anchors = np.asarray(anchors, dtype=np.float32)
        if self.anchors.ndim != 2 or self.anchors.shape[1] != 4:
            raise ValueError(f"anchors must be [A, 4]; got shape {self.anchors.shape}")

    def call(self, inputs):
        anchors = ops.convert_to_tensor(self.anchors)
        return ops.broadcast_to(anchors[None], (ops.shape(inputs)[0],) + self.anchors.shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.anchors.shape

    def get_config(self):
        config = super().get_config()
        config["anchors"] = self.anchors.tolist()
        return config


class _LossLayer(keras.layers.Layer):
    """One of the five losses of mrcnn.losses as a named, weightless graph node."""

    def __init__(self, function: Callable, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def call(self, inputs):
        return self.function(*inputs)

    def compute_output_shape(self, input_shape):
        return ()


class TrainingModel(keras.Model):
    """The functional training model; its loss is the weighted sum of the loss outputs.

    Args:
        inputs, outputs: as keras.Model; the last five outputs are the LOSS_NAMES losses.
        loss_weights: config.LOSS_WEIGHTS.
        weight_decay: config.WEIGHT_DECAY (matterport's L2 over the trainable weights,
            except BatchNorm gamma and beta).
    """

    def __init__(self, inputs, outputs, loss_weights: dict, weight_decay: float, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.loss_weights = dict(loss_weights)
        self.weight_decay = float(weight_decay)
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in loss_fns.LOSS_NAMES]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        values = dict(zip(loss_fns.LOSS_NAMES, y_pred[-len(loss_fns.LOSS_NAMES):]))
        for tracker, name in zip(self.loss_trackers, loss_fns.LOSS_NAMES):
            tracker.update_state(values[name])
        total = loss_fns.weighted_total(values, self.loss_weights)
        if self.weight_decay:
            total = total + loss_fns.weight_decay_loss(self.trainable_weights,
                                                        self.weight_decay)
        return total


def build_training_model(config, feature_maps_fn: Callable, anchors: np.ndarray,
                         batch: int, seed: int | None = None) -> TrainingModel:
    """Build matterport's training graph (see the module docstring).

    Args:
        config: the Config.
        feature_maps_fn: ``fn(input_image, config) -> [P2, P3, P4, P5, P6]``, the same
            backbone + FPN as the inference model.
        anchors: [A, (y1, x1, y2, x2)] normalized anchors of config.IMAGE_SHAPE.
        batch: static images per step on one device (IMAGES_PER_GPU; BATCH_SIZE where
            one traced program sees the whole batch, as on JAX).
        seed: seed of the ROI sampling in DetectionTargetLayer.
    """
    image_shape = tuple(int(d) for d in config.IMAGE_SHAPE)
    if image_shape[0] % 64 or image_shape[1] % 64:
        raise ValueError(f"the molded image size {image_shape[:2]} must be a multiple of "
                         f"64 on both sides (five stride-2 stages and the P6 pool)")
    num_anchors = len(anchors)
    max_gt = config.MAX_GT_INSTANCES
    mask_shape = (tuple(config.MINI_MASK_SHAPE) if config.USE_MINI_MASK
                  else image_shape[:2])

    def input_(shape, name, dtype="float32"):
        return keras.Input(shape=shape, batch_size=batch, name=name, dtype=dtype)

    input_image = input_(image_shape, "input_image")
    input_image_meta = input_((config.IMAGE_META_SIZE,), "input_image_meta")
    input_rpn_match = input_((num_anchors, 1), "input_rpn_match", "int32")
    input_rpn_bbox = input_((config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4), "input_rpn_bbox")
    input_gt_class_ids = input_((max_gt,), "input_gt_class_ids", "int32")
    input_gt_boxes = input_((max_gt, 4), "input_gt_boxes")
    # uint8 0/1, not matterport's bool: tf.distribute cannot split bool batches.
    input_gt_masks = input_(mask_shape + (max_gt,), "input_gt_masks", "uint8")
    inputs = [input_image, input_image_meta, input_rpn_match, input_rpn_bbox,
              input_gt_class_ids, input_gt_boxes, input_gt_masks]
    gt_boxes = norm_boxes_graph(input_gt_boxes, image_shape[:2])

    feature_maps = feature_maps_fn(input_image, config)
    rpn = build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS),
                          config.TOP_DOWN_PYRAMID_SIZE)
    rpn_class_logits, rpn_class, rpn_bbox = rpn_outputs(rpn, feature_maps)
    anchor_tensor = ConstantAnchors(anchors, name="anchors")(input_image)
    rpn_rois = ProposalLayer(
        proposal_count=config.POST_NMS_ROIS_TRAINING,
        nms_threshold=config.RPN_NMS_THRESHOLD,
        pre_nms_limit=config.PRE_NMS_LIMIT,
        rpn_bbox_std_dev=np.asarray(config.RPN_BBOX_STD_DEV).tolist(),
        name="ROI")([rpn_class, rpn_bbox, anchor_tensor])

    if config.USE_RPN_ROIS:
        # The heads' targets do not depend on the RPN weights: no gradient through the
        # proposals (matterport's ROIAlign stops it too).
        target_rois = ops.stop_gradient(rpn_rois)
    else:
        input_rois = input_((config.POST_NMS_ROIS_TRAINING, 4), "input_roi", "int32")
        inputs.append(input_rois)
        target_rois = norm_boxes_graph(ops.cast(input_rois, "float32"), image_shape[:2])

    targets_layer = DetectionTargetLayer(
        train_rois_per_image=config.TRAIN_ROIS_PER_IMAGE,
        roi_positive_ratio=config.ROI_POSITIVE_RATIO,
        mask_shape=config.MASK_SHAPE, use_mini_mask=config.USE_MINI_MASK,
        bbox_std_dev=np.asarray(config.BBOX_STD_DEV).tolist(), seed=seed,
        name="proposal_targets")
    rois, target_class_ids, target_bbox, target_mask = targets_layer(
        [target_rois, input_gt_class_ids, gt_boxes, input_gt_masks])
    # Positives fill the first rows, at most max_positives of them; only they have a
    # mask target. Matterport ran the mask head on all T rows (about 90% of a CPU
    # step); the mask loss and its gradients are the same on the first P rows.
    positives = targets_layer.max_positives
    mask_rois = rois[:, :positives]

    mrcnn_feature_maps = feature_maps[:4]
    pooled = PyramidROIAlign((config.POOL_SIZE, config.POOL_SIZE),
                             name="roi_align_classifier")(
        [rois, input_image_meta] + mrcnn_feature_maps)
    mrcnn_class_logits, mrcnn_class, mrcnn_bbox = classifier_head(
        pooled, config.NUM_CLASSES, config.FPN_CLASSIF_FC_LAYERS_SIZE, config.TRAIN_BN)
    pooled_masks = PyramidROIAlign((config.MASK_POOL_SIZE, config.MASK_POOL_SIZE),
                                   name="roi_align_mask")(
        [mask_rois, input_image_meta] + mrcnn_feature_maps)
    mrcnn_mask = mask_head(pooled_masks, config.NUM_CLASSES, config.TRAIN_BN)
    output_rois = keras.layers.Identity(name="output_rois")(rois)

    active_class_ids = parse_image_meta_graph(input_image_meta)["active_class_ids"]
    loss_outputs = [
        _LossLayer(loss_fns.rpn_class_loss, name="rpn_class_loss")(
            [input_rpn_match, rpn_class_logits]),
        _LossLayer(lambda t, m, p: loss_fns.rpn_bbox_loss(t, m, p, batch),
                   name="rpn_bbox_loss")([input_rpn_bbox, input_rpn_match, rpn_bbox]),
        _LossLayer(loss_fns.mrcnn_class_loss, name="mrcnn_class_loss")(
            [target_class_ids, mrcnn_class_logits, active_class_ids]),
        _LossLayer(loss_fns.mrcnn_bbox_loss, name="mrcnn_bbox_loss")(
            [target_bbox, target_class_ids, mrcnn_bbox]),
        _LossLayer(loss_fns.mrcnn_mask_loss, name="mrcnn_mask_loss")(
            [target_mask[:, :positives], target_class_ids[:, :positives], mrcnn_mask]),
    ]
    outputs = [rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits, mrcnn_class,
               mrcnn_bbox, mrcnn_mask, rpn_rois, output_rois] + loss_outputs
    return TrainingModel(inputs, outputs, loss_weights=config.LOSS_WEIGHTS,
                         weight_decay=config.WEIGHT_DECAY, name="mask_rcnn")
