"""mrcnn/xla.py: where the steps are XLA-compiled, and that both ways compute the same.

On a TensorFlow CPU the steps run in graph mode by default; these tests keep the whole
inference and train steps compiling under XLA there too (ARCHITECTURE.md, static shapes).
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

from mrcnn import xla
from mrcnn.model import MaskRCNN
from mrcnn.pipeline import MaskRCNNSequence
from tests.mrcnn.golden import detect_cases, golden_h5, golden_model  # noqa: F401 (fixtures)
from tests.mrcnn.tiny_training import EllipseDataset, TinyConfig

pytestmark = pytest.mark.backend_agnostic
ON_TF_CPU = keras.backend.backend() == "tensorflow" and not xla.tensorflow_gpus()


@pytest.fixture(autouse=True)
def _restore_mode():
    yield
    xla.set_xla("auto")


def test_default_is_graph_mode_on_a_tensorflow_cpu_and_xla_elsewhere():
    assert xla.xla_mode() == "auto"
    assert xla.use_xla() is (not ON_TF_CPU)
    xla.set_xla("on")
    assert xla.use_xla() is True
    xla.set_xla("off")
    assert xla.use_xla() is False
    with pytest.raises(ValueError, match="'auto', 'on', 'off'.*'yes'"):
        xla.set_xla("yes")
    assert xla.xla_mode() == "off"  # a refused mode changes nothing


@pytest.mark.skipif(not ON_TF_CPU, reason="replicas on logical CPUs exist on TensorFlow CPUs")
def test_tensorflow_replicas_on_logical_cpus_never_use_xla():
    xla.set_xla("on")
    assert xla.use_xla(gpu_count=2) is False
    assert xla.use_xla(gpu_count=1) is True


def _one_step_losses(tmp_path, mode: str) -> tuple[bool, np.ndarray]:
    xla.set_xla(mode)
    keras.utils.set_random_seed(3)
    model = MaskRCNN("training", TinyConfig(), str(tmp_path / mode))
    model.set_trainable("all", verbose=0)
    model.compile(learning_rate=0.01, momentum=0.9)
    (batch,) = MaskRCNNSequence(EllipseDataset(2, seed=0), TinyConfig(), shuffle=False,
                                seed=0)[0]
    losses = [np.asarray(model.keras_model.train_on_batch(batch), np.float64)
              for _ in range(2)]
    return bool(model.keras_model.jit_compile), np.stack(losses)


@pytest.mark.slow
def test_the_train_step_is_the_same_with_and_without_xla(tmp_path):
    compiled, with_xla = _one_step_losses(tmp_path, "on")
    plain, without = _one_step_losses(tmp_path, "off")
    assert (compiled, plain) == (True, False)
    # Same seed, same weights, same batch: the second step's losses include the first
    # SGD update, so a step that differs anywhere (gradients, clipping) shows here.
    assert np.all(np.isfinite(with_xla)) and with_xla[0, 0] > 0
    np.testing.assert_allclose(with_xla, without, rtol=2e-3, atol=1e-4)


@pytest.mark.slow
@pytest.mark.shared_data
def test_detect_follows_jit_compile_and_xla_gives_the_same_detections(golden_model,
                                                                      detect_cases):
    images = [detect_cases[f"images.{i}"] for i in range(3)]
    model = golden_model.keras_model
    default = model.jit_compile
    assert default is xla.use_xla()
    try:
        results = {}
        for jit in (default, not default):
            model.jit_compile = jit
            results[jit] = golden_model.detect(images)
        # One prefix and one mask-head program set per setting, each compiled that way.
        prefixes = golden_model._detection_prefixes
        assert {key[1] for key in prefixes} == {True, False}
        assert all(prefix.jit_compile is key[1] for key, prefix in prefixes.items())
        assert {key[2] for key in golden_model._mask_heads} == {True, False}
    finally:
        model.jit_compile = default
    for compiled, plain in zip(results[True], results[False]):
        assert len(compiled["rois"]) == len(plain["rois"]) > 0
        np.testing.assert_array_equal(compiled["class_ids"], plain["class_ids"])
        np.testing.assert_allclose(compiled["rois"], plain["rois"], atol=1)
        np.testing.assert_allclose(compiled["scores"], plain["scores"], atol=1e-4)
        disagree = np.mean(compiled["masks"] != plain["masks"])
        assert disagree < 1e-3, disagree
