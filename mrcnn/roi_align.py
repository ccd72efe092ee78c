"""PyramidROIAlign: crop every box from the FPN level that suits its size.

Shape glossary:
    batch       images per step
    num_boxes   boxes per image (proposals, ROIs or detections), static
    pool_h, pool_w   pool_shape (POOL_SIZE or MASK_POOL_SIZE)
    P2..P5      [batch, H_l, W_l, channels], strides 4, 8, 16, 32
Boxes are [..., (y1, x1, y2, x2)] normalized to the molded image.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from mrcnn import ops as mrcnn_ops
from mrcnn.image_meta import parse_image_meta_graph

_MIN_LEVEL, _MAX_LEVEL = 2, 5


def roi_levels_graph(boxes, image_shape):
    """FPN level of each box, matterport's rule (Feature Pyramid Networks eq. 1).

    level = clip(4 + round(log2(sqrt(h * w) / (224 / sqrt(H * W)))), 2, 5), with
    h, w the normalized box size and H, W the molded image size; round is half
    to even. All-zero padding boxes land on level 2.

    Args:
        boxes: [..., (y1, x1, y2, x2)] normalized.
        image_shape: [(H, W, ...)] of the molded image.

    Returns:
        [...] int32 levels in 2..5.
    """
    boxes = ops.cast(boxes, "float32")
    image_shape = ops.cast(image_shape, "float32")
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    image_area = image_shape[0] * image_shape[1]
    # log(x) / log(2) rather than log2: matterport's formula, same float32
    # rounding where a box sits on a level boundary.
    ratio = ops.sqrt(height * width) / (224.0 / ops.sqrt(image_area))
    level = 4.0 + ops.round(ops.log(ratio) / ops.log(2.0))
    # Clipping before the cast keeps log(0) = -inf well defined.
    return ops.cast(ops.clip(level, _MIN_LEVEL, _MAX_LEVEL), "int32")


class PyramidROIAlign(keras.layers.Layer):
    """ROI pooling over P2..P5 with tf.image.crop_and_resize sampling.

    Each box is cropped (bilinear, pool_shape samples spanning the box
    corners, as matterport's crop_and_resize call) from the level given by
    `roi_levels_graph`. The output keeps the input box order.

    Args:
        pool_shape: (pool_h, pool_w).

    Call arguments:
        inputs: [boxes [batch, num_boxes, (y1, x1, y2, x2)] normalized,
            image_meta [batch, IMAGE_META_SIZE], P2, P3, P4, P5].
            The image size used for the levels is the first image's, as in
            matterport (a batch shares one molded shape).

    Returns:
        [batch, num_boxes, pool_h, pool_w, channels]. Zero-padding boxes
        give a crop of P2's first pixel, as in matterport.
    """

    def __init__(self, pool_shape: Sequence[int], **kwargs):
        # No autocast: under a mixed dtype policy the boxes stay float32 (call casts
        # them) and the crops keep the feature maps' dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if len(pool_shape) != 2 or min(int(v) for v in pool_shape) < 1:
            raise ValueError(f"PyramidROIAlign: pool_shape must be two sizes >= 1; "
                             f"got {pool_shape!r}")
        self.pool_shape = tuple(int(v) for v in pool_shape)

    def call(self, inputs):
        boxes, image_meta, *feature_maps = inputs
        if len(feature_maps) != _MAX_LEVEL - _MIN_LEVEL + 1:
            raise ValueError(f"PyramidROIAlign: expected 4 feature maps (P2..P5); "
                             f"got {len(feature_maps)}")
        # Matterport stops gradients through the boxes: only features learn here.
        boxes = ops.stop_gradient(ops.cast(boxes, "float32"))
        image_shape = parse_image_meta_graph(image_meta)["image_shape"][0]
        levels = roi_levels_graph(boxes, image_shape) - _MIN_LEVEL

        batch, num_boxes = ops.shape(boxes)[0], boxes.shape[1]
        box_indices = ops.repeat(ops.arange(batch, dtype="int32"), num_boxes)
        pooled = mrcnn_ops.crop_and_resize_multilevel(
            feature_maps, ops.reshape(boxes, (-1, 4)), box_indices,
            ops.reshape(levels, (-1,)), self.pool_shape)
        return ops.reshape(pooled, (batch, num_boxes) + self.pool_shape
                           + (feature_maps[0].shape[-1],))

    def compute_output_shape(self, input_shape):
        boxes_shape, feature_shape = input_shape[0], input_shape[2]
        return (boxes_shape[0], boxes_shape[1]) + self.pool_shape + (feature_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_shape": list(self.pool_shape)})
        return config
