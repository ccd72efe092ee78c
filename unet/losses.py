"""Segmentation losses for binary masks, pure `keras.ops` (any backend).

Shapes: y_true and y_pred are [batch, H, W, 1] (or any [batch, ...]); y_true holds 0/1,
y_pred holds sigmoid probabilities. Every loss returns [batch], one value per image,
so that Keras' reduction and sample weights average over images.
"""
from __future__ import annotations

from keras import ops

SMOOTH = 1.0
# Probabilities are clipped before the logs of the cross-entropy; float32 resolves 1e-7.
EPSILON = 1e-7


def _flatten(y_true, y_pred):
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    batch = ops.shape(y_pred)[0]
    return ops.reshape(y_true, (batch, -1)), ops.reshape(y_pred, (batch, -1))


def dice_coefficient(y_true, y_pred, smooth: float = SMOOTH):
    """Soft Dice per image: (2 sum(t p) + smooth) / (sum(t) + sum(p) + smooth).

    The smoothing term makes an empty mask predicted empty score 1, not 0/0.

    Args:
        y_true: [batch, H, W, 1] 0/1 masks.
        y_pred: [batch, H, W, 1] probabilities in [0, 1].

    Returns:
        [batch] float32 in [0, 1].
    """
    t, p = _flatten(y_true, y_pred)
    intersection = ops.sum(t * p, axis=-1)
    return (2.0 * intersection + smooth) / (ops.sum(t, axis=-1) + ops.sum(p, axis=-1) + smooth)


def binary_crossentropy(y_true, y_pred):
    """Mean pixel binary cross-entropy per image, [batch] float32."""
    t, p = _flatten(y_true, y_pred)
    p = ops.clip(p, EPSILON, 1.0 - EPSILON)
    return -ops.mean(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p), axis=-1)


def dice_loss(y_true, y_pred):
    """1 - soft Dice (smooth 1), [batch]."""
    return 1.0 - dice_coefficient(y_true, y_pred)


def bce_dice(y_true, y_pred):
    """BCE + (1 - soft Dice), [batch]."""
    return binary_crossentropy(y_true, y_pred) + dice_loss(y_true, y_pred)


def bce_logdice_loss(y_true, y_pred):
    """The seed recipe's loss: BCE - log(soft Dice), smooth 1, [batch].

    -log(Dice) grows without bound as the overlap vanishes, so it keeps pulling on
    images whose mask is still far off, where 1 - Dice would saturate at 1.
    """
    return binary_crossentropy(y_true, y_pred) - ops.log(dice_coefficient(y_true, y_pred))

