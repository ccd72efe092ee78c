"""ResNet backbone, FPN and the frozen BatchNorm."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from mrcnn.backbone import BatchNorm, resnet_graph
from mrcnn.fpn import fpn_graph

pytestmark = [pytest.mark.backend_agnostic]


def test_frozen_batchnorm_ignores_training():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 4)).astype(np.float32)
    frozen, free = BatchNorm(frozen=True), BatchNorm(frozen=False)
    # Fresh moving statistics are mean 0, variance 1: inference mode leaves x (almost) as is.
    np.testing.assert_allclose(np.asarray(frozen(x, training=True)), x / np.sqrt(1 + 1e-3),
                               rtol=1e-5)
    normalized = np.asarray(free(x, training=True))
    np.testing.assert_allclose(normalized.mean(0), 0, atol=1e-5)
    assert frozen.epsilon == 1e-3
    assert BatchNorm.from_config(frozen.get_config()).frozen


def test_resnet_and_fpn_shapes():
    image = keras.Input((128, 192, 3), batch_size=2)
    c1, c2, c3, c4, c5 = resnet_graph(image, "resnet50")
    assert [tuple(c.shape) for c in (c1, c2, c3, c4, c5)] == [
        (2, 32, 48, 64), (2, 32, 48, 256), (2, 16, 24, 512), (2, 8, 12, 1024), (2, 4, 6, 2048)]
    assert resnet_graph(keras.Input((64, 64, 3)), "resnet50", stage5=False)[4] is None
    pyramid = fpn_graph(c2, c3, c4, c5, depth=32)
    assert [tuple(p.shape) for p in pyramid] == [
        (2, 32, 48, 32), (2, 16, 24, 32), (2, 8, 12, 32), (2, 4, 6, 32), (2, 2, 3, 32)]


def test_unknown_architecture():
    with pytest.raises(ValueError, match="resnet152"):
        resnet_graph(keras.Input((64, 64, 3)), "resnet152")
