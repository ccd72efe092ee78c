"""The graph under a mixed dtype policy (keras.config.set_dtype_policy("mixed_bfloat16")).

Convolutions then compute in bfloat16, but the layers that rank, refine or output
boxes, scores, deltas and masks stay float32 (mrcnn.ops.OUTPUT_DTYPE), and
PyramidROIAlign keeps its boxes float32 while cropping bfloat16 features.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

from mrcnn.detection import DetectionLayer
from mrcnn.heads import classifier_head, mask_head
from mrcnn.proposals import ProposalLayer
from mrcnn.roi_align import PyramidROIAlign
from mrcnn.rpn import build_rpn_model, rpn_outputs

pytestmark = pytest.mark.backend_agnostic


@pytest.fixture
def mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _dtype(tensor) -> str:
    return keras.backend.standardize_dtype(tensor.dtype)


def test_heads_and_rpn_output_float32(mixed_bfloat16):
    pooled = keras.Input((6, 7, 7, 32), batch_size=2)
    logits, probs, bbox = classifier_head(pooled, num_classes=3, fc_layers_size=16)
    masks = mask_head(keras.Input((4, 14, 14, 32), batch_size=2), num_classes=3)
    assert [_dtype(t) for t in (logits, probs, bbox, masks)] == ["float32"] * 4
    rpn = build_rpn_model(1, 3, 32)
    maps = [keras.Input((s, s, 32), batch_size=2) for s in (16, 8)]
    assert [_dtype(t) for t in rpn_outputs(rpn, maps)] == ["float32"] * 3
    # The convolutions themselves do run in bfloat16.
    assert rpn.get_layer("rpn_conv_shared").compute_dtype == "bfloat16"


def test_box_layers_stay_float32(mixed_bfloat16):
    rng = np.random.default_rng(0)
    fg = rng.uniform(0, 1, (1, 50)).astype(np.float32)
    centres = rng.uniform(0.2, 0.8, (1, 50, 2))
    anchors = np.concatenate([centres - 0.1, centres + 0.1], -1).astype(np.float32)
    proposals = ProposalLayer(10, 0.7, 40, [0.1, 0.1, 0.2, 0.2])(
        [np.stack([1 - fg, fg], -1), np.zeros((1, 50, 4), np.float32), anchors])
    assert _dtype(proposals) == "float32"
    # With zero deltas the proposals are anchors to float32 rounding; bfloat16 (8-bit
    # mantissa) would move them by ~1e-3.
    y1 = keras.ops.convert_to_numpy(proposals)[0, :, 0]
    assert np.abs(y1[:, None] - anchors[0, None, :, 0]).min(axis=1).max() <= 1e-6

    meta = np.array([[0, 64, 64, 3, 64, 64, 3, 0, 0, 64, 64, 1, 1, 1]], np.float32)
    probs = np.full((1, 10, 3), 1 / 3, np.float32)
    probs[0, :, 1] += 0.1
    detections = DetectionLayer(5, 0.0, 0.3, [0.1, 0.1, 0.2, 0.2])(
        [proposals, probs, np.zeros((1, 10, 3, 4), np.float32), meta])
    assert _dtype(detections) == "float32"

    maps = [keras.ops.cast(rng.normal(size=(1, 64 // s, 64 // s, 8)), "bfloat16")
            for s in (4, 8, 16, 32)]
    crops = PyramidROIAlign((7, 7))([proposals, meta] + maps)
    assert _dtype(crops) == "bfloat16"
    # Same crops as float32 features cropped with float32 boxes, to bfloat16 precision.
    reference = PyramidROIAlign((7, 7), dtype="float32")(
        [proposals, meta] + [keras.ops.cast(m, "float32") for m in maps])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(crops, "float32")),
                               keras.ops.convert_to_numpy(reference), atol=0.05, rtol=0.02)


def test_config_dtype_policy_builds_the_model_under_it(tmp_path):
    """Config.DTYPE_POLICY applies to the model built, not to the global policy; the
    weights stay float32 (weight files unchanged) and mixed_float16 training scales its
    loss."""
    from mrcnn.model import MaskRCNN
    from mrcnn.pipeline import MaskRCNNSequence
    from tests.mrcnn.tiny_training import EllipseDataset, TinyConfig

    class Mixed(TinyConfig):
        DTYPE_POLICY = "mixed_float16"

    model = MaskRCNN("training", Mixed(), str(tmp_path))
    assert keras.config.dtype_policy().name == "float32"
    assert model.keras_model.get_layer("fpn_p3").compute_dtype == "float16"
    assert {_dtype(w) for w in model.keras_model.weights} == {"float32"}
    model.set_trainable("heads", verbose=0)
    model.compile(learning_rate=0.01, momentum=0.9)
    assert isinstance(model.keras_model.optimizer, keras.optimizers.LossScaleOptimizer)
    (batch,) = MaskRCNNSequence(EllipseDataset(2), Mixed(), shuffle=False, seed=0)[0]
    losses = np.asarray(model.keras_model.train_on_batch(batch))
    assert np.isfinite(losses).all() and losses[0] > 0

    plain = MaskRCNN("inference", TinyConfig(), str(tmp_path))
    assert plain.keras_model.get_layer("fpn_p3").compute_dtype == "float32"
