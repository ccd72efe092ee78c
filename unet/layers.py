"""Weightless input layers of the U-Net: channel expansion and ImageNet normalisation."""
from __future__ import annotations

import keras
from keras import ops

# Per-channel means in BGR order, on a 0-255 scale: how keras.applications' VGG16
# ImageNet weights ("caffe" preprocessing) expect their input.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable("unet")
class GrayscaleToRGB(keras.layers.Layer):
    """Repeat a single channel three times so grayscale X-rays fit an RGB encoder.

    Call arguments:
        inputs: [batch, H, W, 1].

    Returns:
        [batch, H, W, 3], the same values in every channel.
    """

    def call(self, inputs):
        return ops.repeat(inputs, 3, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


@keras.saving.register_keras_serializable("unet")
class ImageNetCaffeNormalization(keras.layers.Layer):
    """Map RGB in [0, 1] to what the VGG16 ImageNet weights were trained on.

    Keeping this inside the model lets every caller feed [0, 1] images, whatever
    the encoder weights.

    Call arguments:
        inputs: [batch, H, W, (r, g, b)] in [0, 1].

    Returns:
        [batch, H, W, (b, g, r)] on a 0-255 scale minus the ImageNet channel means.
    """

    def call(self, inputs):
        bgr = ops.flip(inputs, axis=-1) * 255.0
        return bgr - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
