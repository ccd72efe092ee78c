"""VGG16-encoder U-Net (the seed recipe) in Keras 3.

Encoder: VGG16's 13 convolutions with keras.applications' layer names
(block1_conv1 .. block5_conv3), so its ImageNet weights load by name. Decoder: five
stages that up-sample by 2 (2x2 transposed conv), concatenate the encoder feature of
the same size (block5_conv3, block4_conv3, block3_conv3, block2_conv2, block1_conv2),
then apply two 3x3 conv + BatchNorm + ReLU, and optional Dropout. Head: 1x1 conv,
sigmoid, float32. With `encoder_batchnorm` each encoder convolution is followed by
BatchNorm (torchvision's vgg16_bn layout), which trains much faster from scratch; the
skips are then taken after the matching `_relu` layers.

Input: [batch, H, W, C] float in [0, 1], C = 1 (grayscale) or 3 (RGB), H and W
multiples of 32. Output: [batch, H, W, 1] foreground probability.
"""
from __future__ import annotations

from typing import Callable, Sequence

import keras
from keras import layers

from mrcnn.dtype_policy import POLICIES, policy_scope
from unet import losses as unet_losses
from unet import metrics as unet_metrics
from unet.layers import GrayscaleToRGB, ImageNetCaffeNormalization
from unet.weights import ENCODER_LAYERS, check_encoder_file, imagenet_weights_path

# (convolutions, filters at base 64) per VGG16 block.
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
SKIP_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3",
               "block5_conv3")
STRIDE = 32  # five 2x2 poolings


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Validate (H, W, C): H, W positive multiples of 32, C in {1, 3}."""
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")
    h, w, c = input_shape
    for name, size in (("height", h), ("width", w)):
        if size is None or int(size) <= 0 or int(size) % STRIDE:
            raise ValueError(f"input {name} must be a positive multiple of {STRIDE} (the "
                             f"encoder pools five times); got input_shape="
                             f"{tuple(input_shape)}")
    if c not in (1, 3):
        raise ValueError(f"input channels must be 1 (grayscale) or 3 (RGB); got "
                         f"input_shape={tuple(input_shape)}")
    return int(h), int(w), int(c)


def _conv_bn_relu(x, filters: int, name: str):
    # No bias: BatchNorm's beta takes its role.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # Momentum 0.9, not 0.99: the moving statistics used at inference must settle
    # within the few hundred steps that small medical datasets give.
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def skip_layers(encoder_batchnorm: bool = False) -> tuple[str, ...]:
    """Names of the encoder layers whose outputs the decoder stages 1..5 concatenate."""
    return tuple(f"{name}_relu" for name in SKIP_LAYERS) if encoder_batchnorm else SKIP_LAYERS


def _encoder_conv(x, filters: int, name: str, batchnorm: bool):
    if not batchnorm:
        return layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
    # The convolution keeps its bias, so VGG16's ImageNet kernels and biases still
    # load by name into it.
    x = layers.Conv2D(filters, 3, padding="same", name=name)(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_unet(input_shape: Sequence[int] = (512, 512, 3), base_filters: int = 64,
               dropout: float = 0.0, input_normalization: str | None = None,
               encoder_batchnorm: bool = False) -> keras.Model:
    """Build the (uncompiled) U-Net graph with freshly initialised weights.

    Args:
        input_shape: (H, W, C), H and W multiples of 32, C 1 or 3.
        base_filters: filters of block1 (64 is VGG16; smaller widths train fast on
            CPU but cannot take ImageNet weights). Deeper blocks scale with it.
        dropout: rate applied at the end of every decoder stage; 0 disables it.
        input_normalization: "imagenet" maps [0, 1] RGB to VGG16's caffe input
            (use it with ImageNet encoder weights); None feeds [0, 1] unchanged.
        encoder_batchnorm: BatchNorm after every encoder convolution (vgg16_bn).

    Returns:
        keras.Model "unet": [batch, H, W, C] -> [batch, H, W, 1] sigmoid float32.
    """
    h, w, c = check_input_shape(input_shape)
    if base_filters < 1:
        raise ValueError(f"base_filters must be >= 1, got {base_filters}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if input_normalization not in (None, "imagenet"):
        raise ValueError(f"input_normalization must be None or 'imagenet', got "
                         f"{input_normalization!r}")

    inputs = keras.Input((h, w, c), name="image")
    x = GrayscaleToRGB(name="grayscale_to_rgb")(inputs) if c == 1 else inputs
    if input_normalization == "imagenet":
        x = ImageNetCaffeNormalization(name="imagenet_normalization")(x)

    skips = []
    for block, (n_convs, filters) in enumerate(VGG16_BLOCKS, start=1):
        width = filters * base_filters // 64
        for i in range(1, n_convs + 1):
            x = _encoder_conv(x, width, f"block{block}_conv{i}", encoder_batchnorm)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)

    for stage in range(len(VGG16_BLOCKS), 0, -1):
        width = VGG16_BLOCKS[stage - 1][1] * base_filters // 64
        x = layers.Conv2DTranspose(width, 2, strides=2, name=f"decoder{stage}_up")(x)
        x = layers.Concatenate(name=f"decoder{stage}_concat")([x, skips[stage - 1]])
        x = _conv_bn_relu(x, width, f"decoder{stage}_a")
        x = _conv_bn_relu(x, width, f"decoder{stage}_b")
        if dropout:
            x = layers.Dropout(dropout, name=f"decoder{stage}_dropout")(x)

    outputs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)
    return keras.Model(inputs, outputs, name="unet")


class UNet:
    """The seed's API: `UNet(loss, metrics, lr).get_model(input_shape)` -> compiled model.

    Args:
        loss: a loss of `unet.losses` (or any Keras loss) on [batch, H, W, 1].
        metrics: Keras metrics; the default `mean_iou` logs as "mean_iou".
        lr: Adam learning rate.
        encoder_weights: None (random init), "imagenet" (the cached keras file; see
            `unet.weights.fetch_imagenet_weights`) or a path to a legacy Keras HDF5
            file with layers block1_conv1 .. block5_conv3.
        freeze_encoder: make the 13 encoder convolutions non-trainable.
        base_filters: width of block1; 64 is VGG16.
        dropout: decoder dropout rate (the seed's suggested fix for overfitting).
        input_normalization: "imagenet", None, or "auto" (imagenet exactly when
            encoder weights are given). Record it with the checkpoints: a model must
            be rebuilt with the same value to reuse them.
        encoder_batchnorm: BatchNorm after each encoder convolution (vgg16_bn); for
            training from scratch. ImageNet VGG16 weights still load into the
            convolutions, but their BatchNorms start from identity statistics.
        dtype_policy: Keras dtype policy the model is built under: None (the global
            one), "float32", "mixed_bfloat16" or "mixed_float16" (16-bit convolutions,
            float32 weights and output; mixed_float16 scales the loss). On a CPU with
            AVX512_BF16, mixed_bfloat16 trains 1.6-1.9x faster.
    """

    def __init__(self, loss: Callable = unet_losses.bce_logdice_loss,
                 metrics: Sequence = (unet_metrics.mean_iou,), lr: float = 1e-4,
                 encoder_weights: str | None = None, freeze_encoder: bool = False,
                 base_filters: int = 64, dropout: float = 0.0,
                 input_normalization: str | None = "auto", encoder_batchnorm: bool = False,
                 dtype_policy: str | None = None):
        if dtype_policy not in POLICIES:
            raise ValueError(f"dtype_policy must be one of {POLICIES}, got {dtype_policy!r}")
        if freeze_encoder and encoder_weights is None:
            raise ValueError("freeze_encoder=True needs encoder_weights: freezing a "
                             "randomly initialised encoder would never train it")
        if encoder_weights is not None and base_filters != 64:
            raise ValueError(f"encoder_weights={encoder_weights!r} needs base_filters=64 "
                             f"(VGG16's widths), got base_filters={base_filters}")
        if input_normalization == "auto":
            input_normalization = None if encoder_weights is None else "imagenet"
        self.loss = loss
        self.metrics = list(metrics)
        self.lr = lr
        self.encoder_weights = encoder_weights
        self.freeze_encoder = freeze_encoder
        self.base_filters = base_filters
        self.dropout = dropout
        self.input_normalization = input_normalization
        self.encoder_batchnorm = encoder_batchnorm
        self.dtype_policy = dtype_policy

    def get_model(self, input_shape: Sequence[int] = (512, 512, 3)) -> keras.Model:
        """Build, load encoder weights, optionally freeze, and compile with Adam."""
        with policy_scope(self.dtype_policy):
            model = build_unet(input_shape, self.base_filters, self.dropout,
                               self.input_normalization, self.encoder_batchnorm)
        if self.encoder_weights is not None:
            path = check_encoder_file(imagenet_weights_path()
                                      if self.encoder_weights == "imagenet"
                                      else self.encoder_weights)
            model.load_weights(str(path), by_name=True)
        if self.freeze_encoder:
            for name in ENCODER_LAYERS:
                model.get_layer(name).trainable = False
        model.compile(optimizer=keras.optimizers.Adam(self.lr), loss=self.loss,
                      metrics=self.metrics)
        return model
