"""Per-ROI layers of mrcnn/heads.py against the Keras layers they replace."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from mrcnn.heads import RoiConv2D, RoiConv2DTranspose, classifier_head, mask_head

pytestmark = [pytest.mark.backend_agnostic]


def _per_roi_reference(roi_layer, plain_layer, x: np.ndarray) -> np.ndarray:
    """Apply `plain_layer`, holding roi_layer's weights, to each image's ROIs in turn."""
    plain_layer.build((None,) + x.shape[2:])
    plain_layer.set_weights(roi_layer.get_weights())
    return np.stack([np.asarray(plain_layer(x[i])) for i in range(len(x))])


@pytest.mark.parametrize("kwargs, spatial", [
    ({"filters": 6, "kernel_size": 3, "padding": "same"}, 5),
    # The kernel covers the input: computed as one matrix product.
    ({"filters": 6, "kernel_size": 5, "padding": "valid", "activation": "relu"}, 5),
    ({"filters": 6, "kernel_size": 1}, 1),
])
def test_roi_conv2d_equals_conv2d_per_roi(kwargs, spatial):
    x = np.random.default_rng(0).normal(size=(2, 3, spatial, spatial, 4)).astype(np.float32)
    layer = RoiConv2D(**kwargs)
    got = np.asarray(layer(x))
    assert got.shape == layer.compute_output_shape(x.shape)
    want = _per_roi_reference(layer, layers.Conv2D(**kwargs), x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [
    # stride == kernel: matrix product and depth-to-space.
    {"filters": 5, "kernel_size": 2, "strides": 2, "activation": "relu"},
    {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same"},
])
def test_roi_conv2d_transpose_equals_conv2d_transpose_per_roi(kwargs):
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 6, 7)).astype(np.float32)
    layer = RoiConv2DTranspose(**kwargs)
    got = np.asarray(layer(x))
    assert got.shape == layer.compute_output_shape(x.shape)
    want = _per_roi_reference(layer, layers.Conv2DTranspose(**kwargs), x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_heads_keep_rois_apart_and_shapes_static():
    pooled = keras.Input((4, 7, 7, 8), batch_size=2)
    logits, probs, bbox = classifier_head(pooled, num_classes=3, fc_layers_size=16)
    assert (tuple(logits.shape), tuple(probs.shape), tuple(bbox.shape)) == (
        (2, 4, 3), (2, 4, 3), (2, 4, 3, 4))
    model = keras.Model(pooled, [probs, bbox])
    x = np.random.default_rng(2).normal(size=(2, 4, 7, 7, 8)).astype(np.float32)
    probs_a, bbox_a = (np.asarray(t) for t in model(x))
    np.testing.assert_allclose(probs_a.sum(-1), 1, rtol=1e-5)
    # Changing one ROI changes only that ROI's outputs.
    y = x.copy()
    y[1, 2] += 1
    probs_b, bbox_b = (np.asarray(t) for t in model(y))
    changed = np.abs(bbox_b - bbox_a).reshape(2, 4, -1).max(-1) > 0
    assert changed.tolist() == [[False] * 4, [False, False, True, False]]

    pooled = keras.Input((5, 14, 14, 8), batch_size=2)
    masks = mask_head(pooled, num_classes=3)
    assert tuple(masks.shape) == (2, 5, 28, 28, 3)
