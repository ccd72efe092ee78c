"""The five Mask R-CNN losses and matterport's L2 weight decay, as functions of tensors.

Each loss reproduces matterport's ``*_loss_graph`` value: the same rows take part, the
same per-element terms, the same mean. Matterport gathers the rows that count with
``tf.where`` (a shape that depends on the data); here every row is kept and weighted
by 0 or 1, and each mean divides by ``max(count, 1)``, which gives matterport's 0.0 when
no row counts and keeps the graph static for XLA and ``jax.jit``.

Shape glossary (config names in capitals):
    batch         IMAGES_PER_GPU
    anchors       all anchors of the image pyramid
    rois          TRAIN_ROIS_PER_IMAGE
    num_classes   NUM_CLASSES, background included
    h, w          MASK_SHAPE
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import keras
from keras import ops

LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
              "mrcnn_mask_loss")


def smooth_l1(y_true, y_pred):
    """Element-wise smooth L1 (Huber with delta 1): 0.5 d^2 where |d| < 1, else |d| - 0.5.

    Args:
        y_true, y_pred: tensors of the same shape.

    Returns:
        float32 tensor of that shape.
    """
    diff = ops.abs(ops.cast(y_true, "float32") - ops.cast(y_pred, "float32"))
    return ops.where(diff < 1.0, 0.5 * ops.square(diff), diff - 0.5)


def _safe_mean(total, count):
    # A sum over zero rows is 0, so dividing by max(count, 1) yields matterport's 0.0.
    return total / ops.maximum(ops.cast(count, "float32"), 1.0)


def _squeeze_match(rpn_match):
    # Matterport feeds rpn_match as [batch, anchors, 1]; accept [batch, anchors] too.
    if len(rpn_match.shape) == 3:
        rpn_match = ops.squeeze(rpn_match, axis=-1)
    return ops.cast(rpn_match, "int32")


def rpn_class_loss(rpn_match, rpn_class_logits):
    """RPN anchor classifier loss: softmax cross-entropy over the non-neutral anchors.

    Args:
        rpn_match: [batch, anchors, 1] int; 1 positive, -1 negative, 0 neutral (ignored).
        rpn_class_logits: [batch, anchors, 2] BG/FG logits.

    Returns:
        float32 scalar: the mean over every non-neutral anchor of the batch; 0 when
        there are none.
    """
    rpn_match = _squeeze_match(rpn_match)
    anchor_class = ops.cast(ops.equal(rpn_match, 1), "int32")
    counted = ops.cast(ops.not_equal(rpn_match, 0), "float32")
    loss = ops.sparse_categorical_crossentropy(
        anchor_class, ops.cast(rpn_class_logits, "float32"), from_logits=True)
    return _safe_mean(ops.sum(loss * counted), ops.sum(counted))


def rpn_bbox_loss(target_bbox, rpn_match, rpn_bbox, images_per_gpu: int):
    """RPN box regression loss: smooth L1 over the positive anchors.

    The i-th positive anchor of an image (in anchor order) is paired with row i of that
    image's ``target_bbox``, as matterport's ``batch_pack_graph`` pairs them.

    Args:
        target_bbox: [batch, RPN_TRAIN_ANCHORS_PER_IMAGE, (dy, dx, log(dh), log(dw))],
            already divided by RPN_BBOX_STD_DEV; zero-padded after the positives' rows.
        rpn_match: [batch, anchors, 1] int; 1 marks a positive anchor.
        rpn_bbox: [batch, anchors, (dy, dx, log(dh), log(dw))] predicted deltas.
        images_per_gpu: IMAGES_PER_GPU; the batch size the targets were built for.

    Returns:
        float32 scalar: the mean over the 4 coordinates of every positive anchor of the
        batch; 0 when there are none. Positives beyond the rows of ``target_bbox`` have no
        target and are left out.
    """
    batch = rpn_bbox.shape[0]
    if batch is not None and batch != images_per_gpu:
        raise ValueError(f"rpn_bbox_loss: rpn_bbox has batch size {batch} but "
                         f"images_per_gpu is {images_per_gpu}")
    rpn_match = _squeeze_match(rpn_match)
    num_rows = target_bbox.shape[1]
    positive = ops.equal(rpn_match, 1)
    # Row of target_bbox that belongs to each positive anchor: its rank among positives.
    rank = ops.cumsum(ops.cast(positive, "int32"), axis=1) - 1
    counted = ops.cast(ops.logical_and(positive, rank < num_rows), "float32")
    rows = ops.clip(rank, 0, num_rows - 1)
    paired_target = ops.take_along_axis(
        ops.cast(target_bbox, "float32"), ops.expand_dims(rows, -1), axis=1)
    # Every row has 4 coordinates, so the mean of row means is the mean of elements.
    loss = ops.mean(smooth_l1(paired_target, rpn_bbox), axis=-1)
    return _safe_mean(ops.sum(loss * counted), ops.sum(counted))


def mrcnn_class_loss(target_class_ids, pred_class_logits, active_class_ids):
    """Classifier head loss: softmax cross-entropy, masked by the active classes.

    An ROI counts when the class it is PREDICTED as belongs to the image's dataset source
    (matterport masks by the argmax, not by the target). Zero-padded ROIs have target 0
    (background) and count, as in matterport.

    Matterport reads ``active_class_ids[0]`` for the whole batch (its code notes that it
    assumes one source per batch); each image's own row is used here, which is the same
    when that assumption holds.

    Args:
        target_class_ids: [batch, rois] int class ids; 0 for background and padding.
        pred_class_logits: [batch, rois, num_classes].
        active_class_ids: [batch, num_classes] 1 for the classes of the image's source.

    Returns:
        float32 scalar: sum of the counted cross-entropies over their count; 0 when no
        ROI counts.
    """
    logits = ops.cast(pred_class_logits, "float32")
    pred_ids = ops.argmax(logits, axis=-1)
    pred_active = ops.take_along_axis(
        ops.cast(active_class_ids, "float32"), ops.cast(pred_ids, "int32"), axis=1)
    loss = ops.sparse_categorical_crossentropy(
        ops.cast(target_class_ids, "int32"), logits, from_logits=True)
    return _safe_mean(ops.sum(loss * pred_active), ops.sum(pred_active))


def _positive_class(target_class_ids):
    """Returns (class ids clipped to >= 0 as int32, float 0/1 weight of the rows > 0)."""
    ids = ops.cast(target_class_ids, "int32")
    positive = ids > 0
    return ops.where(positive, ids, 0), ops.cast(positive, "float32")


def mrcnn_bbox_loss(target_bbox, target_class_ids, pred_bbox):
    """Box head loss: smooth L1 between the targets and the deltas of the target class.

    Args:
        target_bbox: [batch, rois, (dy, dx, log(dh), log(dw))], divided by BBOX_STD_DEV.
        target_class_ids: [batch, rois] int; rows with id > 0 count.
        pred_bbox: [batch, rois, num_classes, (dy, dx, log(dh), log(dw))].

    Returns:
        float32 scalar: the mean over the 4 coordinates of every positive ROI; 0 when
        there are none.
    """
    class_ids, positive = _positive_class(target_class_ids)
    index = class_ids[:, :, None, None]
    pred = ops.take_along_axis(ops.cast(pred_bbox, "float32"), index, axis=2)[:, :, 0]
    loss = ops.mean(smooth_l1(target_bbox, pred), axis=-1)
    return _safe_mean(ops.sum(loss * positive), ops.sum(positive))


def mrcnn_mask_loss(target_masks, target_class_ids, pred_masks):
    """Mask head loss: binary cross-entropy of the target class's mask.

    Args:
        target_masks: [batch, rois, h, w] 0/1 float.
        target_class_ids: [batch, rois] int; rows with id > 0 count.
        pred_masks: [batch, rois, h, w, num_classes] sigmoid probabilities.

    Returns:
        float32 scalar: the mean over every pixel of every positive ROI; 0 when there
        are none. Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does.
    """
    class_ids, positive = _positive_class(target_class_ids)
    index = class_ids[:, :, None, None, None]
    pred = ops.take_along_axis(ops.cast(pred_masks, "float32"), index, axis=-1)[..., 0]
    loss = ops.binary_crossentropy(ops.cast(target_masks, "float32"), pred)
    per_roi = ops.mean(loss, axis=(2, 3))
    return _safe_mean(ops.sum(per_roi * positive), ops.sum(positive))


def weighted_total(losses: Mapping[str, object], loss_weights: Mapping[str, float]):
    """Sum of the losses scaled by LOSS_WEIGHTS; a name missing there weighs 1.0.

    Args:
        losses: {name: scalar tensor}, e.g. the five LOSS_NAMES.
        loss_weights: config.LOSS_WEIGHTS.

    Returns:
        float32 scalar.
    """
    return sum(ops.cast(value, "float32") * float(loss_weights.get(name, 1.0))
               for name, value in losses.items())


def weight_decay_loss(variables: Iterable[keras.Variable], weight_decay: float):
    """Matterport's L2 regularisation: sum of ``weight_decay * sum(w^2) / size(w)``.

    BatchNorm ``gamma`` and ``beta`` are skipped, as matterport skips them by name.
    Pass the model's trainable weights: matterport regularises only those.

    Args:
        variables: the weights to regularise.
        weight_decay: WEIGHT_DECAY.

    Returns:
        float32 scalar; 0 when nothing is regularised.
    """
    total = ops.zeros((), "float32")
    for variable in variables:
        short_name = variable.name.split("/")[-1].split(":")[0]
        if short_name in ("gamma", "beta"):
            continue
        size = max(math.prod(variable.shape), 1)
        total = total + weight_decay * ops.sum(ops.square(ops.cast(variable, "float32"))) / size
    return total
