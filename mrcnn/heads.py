"""Per-ROI classifier/box head and mask head, with matterport's layer names.

Shape glossary (R = ROIs per image: POST_NMS_ROIS_INFERENCE for the classifier in
inference, DETECTION_MAX_INSTANCES for the mask head, TRAIN_ROIS_PER_IMAGE in training):
    pooled (classifier): [batch, R, POOL_SIZE, POOL_SIZE, depth] from PyramidROIAlign
    pooled (mask):       [batch, R, MASK_POOL_SIZE, MASK_POOL_SIZE, depth]
    mrcnn_class_logits:  [batch, R, NUM_CLASSES]
    mrcnn_class:         [batch, R, NUM_CLASSES] softmax
    mrcnn_bbox:          [batch, R, NUM_CLASSES, (dy, dx, log(dh), log(dw))]
    mrcnn_mask:          [batch, R, 2 * MASK_POOL_SIZE, 2 * MASK_POOL_SIZE, NUM_CLASSES]
                         sigmoid

Matterport wraps each layer in TimeDistributed. Keras 3's TimeDistributed loops over a
run-time ROI axis slowly, so the convolutions here fold the ROIs into the batch
([batch * R, h, w, c]), convolve, and unfold again. The weights are the same
variables with the same names and shapes as matterport's, and every named layer still
outputs [batch, R, ...], so graphs inspected by layer name see matterport's shapes.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from mrcnn.backbone import BatchNorm
from mrcnn.ops import OUTPUT_DTYPE
from mrcnn.winograd import WinogradMixin


class _PerRoi:
    """Mixin: apply a 2D conv layer to each ROI of [batch, rois, h, w, c]."""

    def build(self, input_shape):
        super().build(tuple(input_shape[1:]))
        # The parent's spec expects rank 4; ours is rank 5.
        self.input_spec = None

    def call(self, inputs):
        batch, rois = ops.shape(inputs)[0], ops.shape(inputs)[1]
        folded = ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))
        outputs = super().call(folded)
        return ops.reshape(outputs, (batch, rois) + tuple(outputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 4:
            # The parent's build() checks its kernel against a folded shape.
            return super().compute_output_shape(input_shape)
        return (input_shape[0],) + tuple(super().compute_output_shape(tuple(input_shape[1:])))


@keras.saving.register_keras_serializable(package="mrcnn")
class RoiConv2D(_PerRoi, WinogradMixin, layers.Conv2D):
    """keras.layers.Conv2D on [batch, rois, h, w, c]; same arguments and weights (the 3x3
    mask-head convolutions may run as Winograd's, see mrcnn.winograd)."""

    def call(self, inputs):
        height, width, channels = inputs.shape[2:]
        if (self.padding != "valid" or (height, width) != tuple(self.kernel_size)
                or tuple(self.dilation_rate) != (1, 1) or self.groups != 1):
            return super().call(inputs)
        # A kernel covering the whole input (mrcnn_class_conv1) is one matrix product;
        # XLA's CPU convolution is ~10x slower for this shape on JAX.
        batch, rois = ops.shape(inputs)[0], ops.shape(inputs)[1]
        flat = ops.reshape(inputs, (-1, height * width * channels))
        outputs = ops.matmul(flat, ops.reshape(self.kernel, (-1, self.filters)))
        if self.use_bias:
            outputs = outputs + self.bias
        outputs = self.activation(outputs)
        return ops.reshape(outputs, (batch, rois, 1, 1, self.filters))


@keras.saving.register_keras_serializable(package="mrcnn")
class RoiConv2DTranspose(_PerRoi, layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose on [batch, rois, h, w, c]; same arguments and weights."""

    def call(self, inputs):
        kh, kw = self.kernel_size
        if (self.padding != "valid" or tuple(self.strides) != (kh, kw)
                or tuple(self.dilation_rate) != (1, 1) or self.output_padding is not None):
            return super().call(inputs)
        # With stride == kernel (mrcnn_mask_deconv) the output patches do not overlap:
        # each input pixel times the kernel gives its own kh x kw block, so one matrix
        # product and a depth-to-space; XLA's CPU transposed convolution is much slower.
        batch, rois = ops.shape(inputs)[0], ops.shape(inputs)[1]
        height, width, channels = inputs.shape[2:]
        kernel = ops.reshape(ops.transpose(self.kernel, (3, 0, 1, 2)), (channels, -1))
        blocks = ops.matmul(ops.reshape(inputs, (-1, channels)), kernel)
        blocks = ops.reshape(blocks, (-1, height, width, kh, kw, self.filters))
        outputs = ops.reshape(ops.transpose(blocks, (0, 1, 3, 2, 4, 5)),
                              (-1, height * kh, width * kw, self.filters))
        if self.use_bias:
            outputs = outputs + self.bias
        outputs = self.activation(outputs)
        return ops.reshape(outputs, (batch, rois, height * kh, width * kw, self.filters))


def classifier_head(pooled, num_classes: int, fc_layers_size: int = 1024,
                    train_bn: bool = False) -> list:
    """Class scores and per-class box deltas for each ROI.

    Args:
        pooled: [batch, R, POOL_SIZE, POOL_SIZE, depth] Keras tensor (R static).
        num_classes: NUM_CLASSES, background included.
        fc_layers_size: FPN_CLASSIF_FC_LAYERS_SIZE.
        train_bn: Config.TRAIN_BN; False freezes the BatchNorms.

    Returns:
        [mrcnn_class_logits, mrcnn_class, mrcnn_bbox]; see the glossary.
    """
    num_rois, pool_size = pooled.shape[1], pooled.shape[2]
    frozen = not train_bn
    # A conv with the pool's full size acts as the first fully connected layer.
    x = RoiConv2D(fc_layers_size, pool_size, padding="valid", name="mrcnn_class_conv1")(pooled)
    x = BatchNorm(frozen=frozen, name="mrcnn_class_bn1")(x)
    x = layers.Activation("relu")(x)
    x = RoiConv2D(fc_layers_size, 1, name="mrcnn_class_conv2")(x)
    x = BatchNorm(frozen=frozen, name="mrcnn_class_bn2")(x)
    x = layers.Activation("relu")(x)
    shared = layers.Reshape((num_rois, fc_layers_size), name="pool_squeeze")(x)
    # Under a mixed dtype policy the outputs stay float32 (scores, deltas and losses
    # need it); these layers are a small share of the head's work.
    logits = layers.Dense(num_classes, name="mrcnn_class_logits", dtype=OUTPUT_DTYPE)(shared)
    probs = layers.Activation("softmax", name="mrcnn_class", dtype=OUTPUT_DTYPE)(logits)
    x = layers.Dense(num_classes * 4, name="mrcnn_bbox_fc", dtype=OUTPUT_DTYPE)(shared)
    bbox = layers.Reshape((num_rois, num_classes, 4), name="mrcnn_bbox",
                          dtype=OUTPUT_DTYPE)(x)
    return [logits, probs, bbox]


def mask_head(pooled, num_classes: int, train_bn: bool = False):
    """Per-class soft masks for each ROI.

    Args:
        pooled: [batch, R, MASK_POOL_SIZE, MASK_POOL_SIZE, depth] Keras tensor.
        num_classes: NUM_CLASSES, background included.
        train_bn: Config.TRAIN_BN; False freezes the BatchNorms.

    Returns:
        mrcnn_mask [batch, R, 2 * MASK_POOL_SIZE, 2 * MASK_POOL_SIZE, NUM_CLASSES] in [0, 1].
    """
    x = pooled
    for i in range(1, 5):
        x = RoiConv2D(256, 3, padding="same", name=f"mrcnn_mask_conv{i}")(x)
        x = BatchNorm(frozen=not train_bn, name=f"mrcnn_mask_bn{i}")(x)
        x = layers.Activation("relu")(x)
    x = RoiConv2DTranspose(256, 2, strides=2, activation="relu", name="mrcnn_mask_deconv")(x)
    return RoiConv2D(num_classes, 1, activation="sigmoid", name="mrcnn_mask",
                     dtype=OUTPUT_DTYPE)(x)
