"""mrcnn/winograd.py: Winograd F(2x2, 3x3) against the backend's own convolution."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from mrcnn import winograd, xla
from mrcnn.backbone import resnet_graph
from mrcnn.fpn import fpn_graph
from mrcnn.heads import RoiConv2D

pytestmark = [pytest.mark.backend_agnostic]


@pytest.fixture(autouse=True)
def _restore_algorithm():
    yield
    winograd.set_conv3x3_algorithm("direct")


@pytest.mark.parametrize("shape", [(2, 8, 8, 5), (1, 7, 9, 3), (3, 1, 1, 4), (1, 2, 3, 1),
                                   (4, 14, 14, 32)])
def test_equals_the_direct_convolution(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    kernel = rng.normal(size=(3, 3, shape[-1], 6)).astype(np.float32)
    got = ops.convert_to_numpy(winograd.winograd_conv3x3(ops.convert_to_tensor(x),
                                                         ops.convert_to_tensor(kernel)))
    want = ops.convert_to_numpy(ops.conv(x, kernel, padding="same"))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_a_training_step_matches_the_direct_convolution():
    # Gradients flow through the transforms: one SGD step changes the weights alike.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6, 6, 3)).astype(np.float32)
    y = rng.normal(size=(4, 6, 6, 2)).astype(np.float32)
    weights = {}
    for algorithm in ("direct", "winograd"):
        winograd.set_conv3x3_algorithm(algorithm)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6, 6, 3)),
                                  winograd.Conv2D(4, 3, padding="same", activation="relu"),
                                  winograd.Conv2D(2, 3, padding="same")])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.train_on_batch(x, y)
        weights[algorithm] = model.get_weights()
    for direct, fast in zip(weights["direct"], weights["winograd"]):
        np.testing.assert_allclose(fast, direct, rtol=1e-5, atol=1e-6)


def _count_calls(monkeypatch) -> list:
    calls = []
    original = winograd.winograd_conv3x3

    def counting(inputs, kernel):
        calls.append(tuple(inputs.shape[1:]))
        return original(inputs, kernel)

    monkeypatch.setattr(winograd, "winograd_conv3x3", counting)
    return calls


@pytest.mark.parametrize("kwargs", [
    {"kernel_size": 3, "strides": 2, "padding": "same"},
    {"kernel_size": 3, "padding": "valid"},
    {"kernel_size": 3, "padding": "same", "dilation_rate": 2},
    {"kernel_size": 1},
])
def test_only_3x3_stride_1_same_convolutions_take_it(kwargs, monkeypatch):
    calls = _count_calls(monkeypatch)
    winograd.set_conv3x3_algorithm("winograd")
    x = np.ones((1, 8, 8, 2), np.float32)
    fast, plain = winograd.Conv2D(3, **kwargs), layers.Conv2D(3, **kwargs)
    got = np.asarray(fast(x))
    plain.build(x.shape)
    plain.set_weights(fast.get_weights())
    np.testing.assert_allclose(got, np.asarray(plain(x)), rtol=1e-6)
    assert calls == []
    winograd.Conv2D(3, 3, padding="same")(x)
    assert calls == [(8, 8, 2)]


def test_backbone_fpn_and_mask_head_convolutions_agree_both_ways(monkeypatch):
    image = keras.Input((64, 64, 3))
    _, c2, c3, c4, c5 = resnet_graph(image, "resnet50", stage5=True)
    model = keras.Model(image, fpn_graph(c2, c3, c4, c5, depth=32))
    x = np.random.default_rng(2).normal(size=(1, 64, 64, 3)).astype(np.float32)
    winograd.set_conv3x3_algorithm("direct")
    direct = [ops.convert_to_numpy(p) for p in model(x)]
    calls = _count_calls(monkeypatch)
    winograd.set_conv3x3_algorithm("winograd")
    fast = [ops.convert_to_numpy(p) for p in model(x)]
    assert len(calls) == 16 + 4  # ResNet-50's 3x3 convs, the FPN's P2..P5
    for d, f in zip(direct, fast):
        np.testing.assert_allclose(f, d, rtol=1e-4, atol=1e-4 * np.abs(d).max())
    RoiConv2D(4, 3, padding="same")(np.ones((1, 2, 14, 14, 3), np.float32))
    assert calls[-1] == (14, 14, 3)  # the ROIs folded into the batch


def test_direct_by_default_auto_is_winograd_on_a_cpu_under_xla_and_names_are_checked():
    assert winograd.conv3x3_algorithm() == "direct"
    winograd.set_conv3x3_algorithm("auto")
    on_cpu = winograd._backend_on_cpu()
    try:
        for mode in xla.MODES:
            xla.set_xla(mode)
            want = "winograd" if on_cpu and xla.use_xla() else "direct"
            assert winograd.conv3x3_algorithm() == want, mode
        # TensorFlow's CPU default is graph mode, where Winograd does not pay.
        xla.set_xla("auto")
        if keras.backend.backend() == "tensorflow" and on_cpu:
            assert winograd.conv3x3_algorithm() == "direct"
    finally:
        xla.set_xla("auto")
    with pytest.raises(ValueError, match="unknown 3x3 convolution algorithm 'fast'"):
        winograd.set_conv3x3_algorithm("fast")
