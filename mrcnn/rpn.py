"""Region Proposal Network head, shared over the pyramid levels.

Shape glossary (per level, for a feature map [batch, h, w, depth] and A =
len(RPN_ANCHOR_RATIOS) anchors per location, anchor stride s):
    rpn_class_logits: [batch, h/s * w/s * A, 2]  (background, foreground) logits
    rpn_probs:        [batch, h/s * w/s * A, 2]  softmax of the logits
    rpn_bbox:         [batch, h/s * w/s * A, (dy, dx, log(dh), log(dw))]
The model concatenates the levels P2..P6 in that order along axis 1, which is the
order of the anchors from generate_pyramid_anchors.
"""
from __future__ import annotations

import keras
from keras import layers

from mrcnn import winograd
from mrcnn.ops import OUTPUT_DTYPE


def build_rpn_model(anchor_stride: int, anchors_per_location: int, depth: int) -> keras.Model:
    """The RPN head as a nested Model named "rpn_model", applied to every level.

    Matterport nests it so that one set of weights serves all levels; Keras-2 weight
    files therefore hold these weights in an h5 group "rpn_model".

    Args:
        anchor_stride: 1 for an anchor set per feature-map cell, 2 for every other cell.
        anchors_per_location: anchors per cell (the number of ratios).
        depth: channels of the feature maps.

    Returns:
        A Model from [batch, h, w, depth] to [rpn_class_logits, rpn_probs, rpn_bbox].
    """
    feature_map = keras.Input(shape=(None, None, depth), name="input_rpn_feature_map")
    shared = winograd.Conv2D(512, 3, padding="same", activation="relu", strides=anchor_stride,
                           name="rpn_conv_shared")(feature_map)
    # The 1x1 output convs stay float32 under a mixed policy: anchor scores are
    # ranked by top_k and NMS, and deltas become boxes (see mrcnn.ops.OUTPUT_DTYPE).
    x = layers.Conv2D(2 * anchors_per_location, 1, name="rpn_class_raw",
                      dtype=OUTPUT_DTYPE)(shared)
    rpn_class_logits = layers.Reshape((-1, 2), dtype=OUTPUT_DTYPE)(x)
    rpn_probs = layers.Activation("softmax", name="rpn_class_xxx",
                                  dtype=OUTPUT_DTYPE)(rpn_class_logits)
    x = layers.Conv2D(4 * anchors_per_location, 1, name="rpn_bbox_pred",
                      dtype=OUTPUT_DTYPE)(shared)
    rpn_bbox = layers.Reshape((-1, 4), dtype=OUTPUT_DTYPE)(x)
    return keras.Model(feature_map, [rpn_class_logits, rpn_probs, rpn_bbox], name="rpn_model")


def rpn_outputs(rpn_model: keras.Model, feature_maps: list) -> list:
    """Apply the RPN to every level and concatenate the levels.

    Args:
        rpn_model: from build_rpn_model.
        feature_maps: [P2, P3, P4, P5, P6] Keras tensors.

    Returns:
        [rpn_class_logits, rpn_class, rpn_bbox], each [batch, anchors, ...] over all levels,
        from layers named as matterport's.
    """
    per_level = [rpn_model(p) for p in feature_maps]
    names = ["rpn_class_logits", "rpn_class", "rpn_bbox"]
    return [layers.Concatenate(axis=1, name=name, dtype=OUTPUT_DTYPE)(
                [level[i] for level in per_level])
            for i, name in enumerate(names)]
