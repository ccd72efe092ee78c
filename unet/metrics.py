"""Training metrics for binary masks, pure `keras.ops` (any backend).

Each metric takes y_true [batch, H, W, 1] (0/1) and y_pred [batch, H, W, 1]
(probabilities) and returns [batch], one value per image; Keras averages them over
all images of an epoch. The thresholded metrics binarise y_pred at 0.5 and score an
empty mask predicted empty as 1. `unet.evaluation` holds the numpy twins used on
full-resolution masks.
"""
from __future__ import annotations

from keras import ops

from unet.losses import dice_coefficient

THRESHOLD = 0.5
ISIC_JACCARD_FLOOR = 0.65


def _binary_counts(y_true, y_pred):
    """Per image (intersection, |true|, |pred|) of the masks binarised at THRESHOLD."""
    batch = ops.shape(y_pred)[0]
    t = ops.reshape(ops.cast(ops.greater_equal(ops.cast(y_true, "float32"), THRESHOLD),
                             "float32"), (batch, -1))
    p = ops.reshape(ops.cast(ops.greater_equal(ops.cast(y_pred, "float32"), THRESHOLD),
                             "float32"), (batch, -1))
    return ops.sum(t * p, axis=-1), ops.sum(t, axis=-1), ops.sum(p, axis=-1)


def _ratio_or_one(numerator, denominator):
    """numerator / denominator, and 1 where both masks are empty (denominator 0)."""
    empty = ops.equal(denominator, 0.0)
    return ops.where(empty, 1.0, numerator / ops.where(empty, 1.0, denominator))


def mean_iou(y_true, y_pred):
    """Intersection over union per image at threshold 0.5, [batch]."""
    inter, n_true, n_pred = _binary_counts(y_true, y_pred)
    return _ratio_or_one(inter, n_true + n_pred - inter)


def dice(y_true, y_pred):
    """Soft Dice coefficient with smooth 1 (1 - dice_loss), [batch]."""
    return dice_coefficient(y_true, y_pred)


def isic_jaccard(y_true, y_pred):
    """ISIC 2018 task 1 score per image: Jaccard at 0.5, set to 0 below 0.65, [batch]."""
    jaccard = mean_iou(y_true, y_pred)
    return ops.where(ops.less(jaccard, ISIC_JACCARD_FLOOR), 0.0, jaccard)


def siim_dice(y_true, y_pred):
    """SIIM-ACR score per image: Dice at 0.5, 1 when both masks are empty, [batch]."""
    inter, n_true, n_pred = _binary_counts(y_true, y_pred)
    return _ratio_or_one(2.0 * inter, n_true + n_pred)
