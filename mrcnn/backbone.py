"""ResNet-50/101 backbone with matterport's layer names, and the frozen BatchNorm.

Shape glossary (channels last, H and W the molded image size):
    C1: [batch, H/4, W/4, 64]      (after the stem's max-pool, as matterport returns it)
    C2: [batch, H/4, W/4, 256]     res2c_out
    C3: [batch, H/8, W/8, 512]     res3d_out
    C4: [batch, H/16, W/16, 1024]  res4f_out (ResNet-50) / res4w_out (ResNet-101)
    C5: [batch, H/32, W/32, 2048]  res5c_out, or None when stage5 is False

Layer names follow matterport (conv1, bn_conv1, res2a_branch2a, bn2a_branch2a, ...,
res2a_out) so that matterport and Keras-2 ImageNet weight files load by name.
"""
from __future__ import annotations

import keras
from keras import layers

from mrcnn import winograd

# Identity blocks after the first (conv) block of stage 4.
_STAGE4_BLOCKS = {"resnet50": 5, "resnet101": 22}


@keras.saving.register_keras_serializable(package="mrcnn")
class BatchNorm(layers.BatchNormalization):
    """BatchNormalization that can be frozen in inference mode.

    Matterport trains with batches of one or two images, whose statistics are noise, so
    by default (TRAIN_BN False) the layer always normalises with its moving statistics,
    even inside a training step. Keras 3 lets a functional model override a `training`
    argument fixed at graph construction, hence the flag lives on the layer instead.

    Args:
        frozen: True to always run in inference mode.
        **kwargs: as keras.layers.BatchNormalization. The default epsilon is 1e-3, as in
            Keras 2 and matterport.

    Call arguments:
        inputs: [..., channels].
        training: ignored when frozen.
    """

    def __init__(self, frozen: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.frozen = frozen

    def call(self, inputs, training=None, mask=None):
        if self.frozen:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self) -> dict:
        config = super().get_config()
        config["frozen"] = self.frozen
        return config


def _bottleneck(x, kernel_size: int, filters: tuple[int, int, int], stage: int, block: str,
                strides: int | None, frozen_bn: bool):
    """One bottleneck block; a projection shortcut when `strides` is given.

    Matterport puts the stride on the first 1x1 conv (not on the 3x3) and on the shortcut.
    """
    conv = f"res{stage}{block}_branch"
    bn = f"bn{stage}{block}_branch"
    f1, f2, f3 = filters
    y = layers.Conv2D(f1, 1, strides=strides or 1, name=conv + "2a")(x)
    y = BatchNorm(frozen=frozen_bn, name=bn + "2a")(y)
    y = layers.Activation("relu")(y)
    y = winograd.Conv2D(f2, kernel_size, padding="same", name=conv + "2b")(y)
    y = BatchNorm(frozen=frozen_bn, name=bn + "2b")(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(f3, 1, name=conv + "2c")(y)
    y = BatchNorm(frozen=frozen_bn, name=bn + "2c")(y)
    if strides is None:
        shortcut = x
    else:
        shortcut = layers.Conv2D(f3, 1, strides=strides, name=conv + "1")(x)
        shortcut = BatchNorm(frozen=frozen_bn, name=bn + "1")(shortcut)
    y = layers.Add()([y, shortcut])
    return layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def _stage(x, stage: int, filters: tuple[int, int, int], num_blocks: int, strides: int,
           frozen_bn: bool):
    x = _bottleneck(x, 3, filters, stage, "a", strides, frozen_bn)
    for i in range(1, num_blocks):
        x = _bottleneck(x, 3, filters, stage, chr(ord("a") + i), None, frozen_bn)
    return x


def resnet_graph(input_image, architecture: str, stage5: bool = True, train_bn: bool = False):
    """Build the ResNet feature extractor on `input_image`.

    Args:
        input_image: [batch, H, W, channels] Keras tensor, mean-subtracted (mold_image).
        architecture: "resnet50" or "resnet101".
        stage5: build stage 5 (C5); matterport always does for Mask R-CNN.
        train_bn: False freezes every BatchNorm in inference mode (Config.TRAIN_BN).

    Returns:
        [C1, C2, C3, C4, C5] Keras tensors (C5 is None without stage 5); see the glossary.
    """
    if architecture not in _STAGE4_BLOCKS:
        raise ValueError(f"architecture must be one of {sorted(_STAGE4_BLOCKS)}, "
                         f"got {architecture!r}")
    frozen = not train_bn
    x = layers.ZeroPadding2D(3)(input_image)
    x = layers.Conv2D(64, 7, strides=2, name="conv1")(x)
    x = BatchNorm(frozen=frozen, name="bn_conv1")(x)
    x = layers.Activation("relu")(x)
    c1 = x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    c2 = x = _stage(x, 2, (64, 64, 256), 3, 1, frozen)
    c3 = x = _stage(x, 3, (128, 128, 512), 4, 2, frozen)
    c4 = x = _stage(x, 4, (256, 256, 1024), 1 + _STAGE4_BLOCKS[architecture], 2, frozen)
    c5 = _stage(x, 5, (512, 512, 2048), 3, 2, frozen) if stage5 else None
    return [c1, c2, c3, c4, c5]
