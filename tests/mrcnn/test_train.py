"""MaskRCNN.train(): overfitting, the heads-then-3+ schedule, resume, NaN stop, 2 devices.

A tiny backbone with matterport's stage names (tests/mrcnn/tiny_training.py) on 64 px
images keeps each run to seconds; most of the time is the XLA compilation of the step.
"""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from mrcnn import model as modellib
from mrcnn.boxes import compute_overlaps, extract_bboxes
from mrcnn.masks import compute_overlaps_masks
from mrcnn import training
from mrcnn.training import LAYER_REGEX, NaNLossError
from tests.conftest import ROOT
from tests.mrcnn.tiny_training import EllipseDataset, TinyConfig

pytestmark = [pytest.mark.backend_agnostic, pytest.mark.slow]


class LossRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append({k: float(v) for k, v in logs.items()})


class OverfitConfig(TinyConfig):
    STEPS_PER_EPOCH = 10
    VALIDATION_STEPS = 0  # validated in test_heads_then_3plus_then_resume
    LEARNING_RATE = 0.02


class DetectConfig(OverfitConfig):
    IMAGES_PER_GPU = 1


def test_overfits_a_few_images_and_detects_them(tmp_path):
    keras.utils.set_random_seed(0)
    dataset = EllipseDataset(2, seed=0)
    model = modellib.MaskRCNN("training", OverfitConfig(), str(tmp_path))
    recorder = LossRecorder()
    history = model.train(dataset, dataset, OverfitConfig.LEARNING_RATE, epochs=8,
                          layers="all", custom_callbacks=[recorder], seed=0, workers=2,
                          verbose=0)
    names = {"loss", "rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
             "mrcnn_bbox_loss", "mrcnn_mask_loss"}
    assert names <= set(history.history)
    assert len(recorder.losses) == 80
    # Epoch means (Keras logs running means over each epoch).
    losses = history.history["loss"]
    assert losses[0] / losses[-1] > 4, losses

    checkpoint = model.find_last()
    assert checkpoint == os.path.join(model.log_dir, "mask_rcnn_tiny_0008.h5")
    detector = modellib.MaskRCNN("inference", DetectConfig(), str(tmp_path))
    report = detector.load_weights(checkpoint, by_name=True)
    assert not report.missing
    for image_id in range(2):
        result = detector.detect([dataset.load_image(image_id)])[0]
        gt_masks = dataset.load_mask(image_id)[0]
        gt_boxes = extract_bboxes(gt_masks)
        assert len(result["rois"]) >= len(gt_boxes)
        best = compute_overlaps(gt_boxes, result["rois"]).max(axis=1)
        assert (best > 0.5).all(), (image_id, best, result["rois"], gt_boxes)
        assert set(result["class_ids"][:len(gt_boxes)]) == {1}
        _assert_mixed_bfloat16_detects_the_same(checkpoint, dataset.load_image(image_id),
                                                result, tmp_path)


class MixedDetectConfig(DetectConfig):
    DTYPE_POLICY = "mixed_bfloat16"


def _assert_mixed_bfloat16_detects_the_same(checkpoint: str, image, want: dict,
                                            tmp_path) -> None:
    """The README's stated tolerance of mixed_bfloat16 against float32, on a trained
    detector: the same detections, boxes within 1 px, scores within 0.01, masks at IoU
    >= 0.95. Measured on TF and JAX: equal boxes and masks, scores within 0.004."""
    mixed = modellib.MaskRCNN("inference", MixedDetectConfig(), str(tmp_path))
    mixed.load_weights(checkpoint, by_name=True)
    assert mixed.keras_model.get_layer("fpn_p2").compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is back
    got = mixed.detect([image])[0]
    assert len(got["rois"]) == len(want["rois"])
    np.testing.assert_array_equal(got["class_ids"], want["class_ids"])
    np.testing.assert_allclose(got["rois"], want["rois"], atol=1)
    np.testing.assert_allclose(got["scores"], want["scores"], atol=0.01)
    overlap = compute_overlaps_masks(got["masks"], want["masks"]).diagonal()
    assert (overlap >= 0.95).all(), overlap


def _snapshot(keras_model) -> dict[str, np.ndarray]:
    return {w.path: keras.ops.convert_to_numpy(w).copy() for w in keras_model.weights}


def _changed(before: dict, after: dict) -> set[str]:
    return {path for path in before if not np.array_equal(before[path], after[path])}


def _layer_of(path: str) -> str:
    """The (innermost) layer name of a weight path such as rpn_model/rpn_conv_shared/kernel."""
    return path.split("/")[-2]


class ScheduleConfig(TinyConfig):
    # Random ROIs instead of RPN proposals (matterport's USE_RPN_ROIS=False path): the
    # same schedule, and an XLA compilation 3x shorter than with the proposal NMS.
    USE_RPN_ROIS = False
    STEPS_PER_EPOCH = 2
    VALIDATION_STEPS = 0


class ResumeConfig(ScheduleConfig):
    VALIDATION_STEPS = 1


def test_heads_then_3plus_then_resume(tmp_path):
    dataset = EllipseDataset(4, seed=1)
    model = modellib.MaskRCNN("training", ScheduleConfig(), str(tmp_path))
    heads = re.compile(LAYER_REGEX["heads"])
    stage3_up = re.compile(LAYER_REGEX["3+"])

    start = _snapshot(model.keras_model)
    model.train(dataset, None, 0.01, epochs=1, layers="heads", seed=0, workers=1, verbose=0)
    after_heads = _snapshot(model.keras_model)
    changed = {_layer_of(p) for p in _changed(start, after_heads)}
    # Layers without a gradient in two steps (e.g. the mask head before any positive
    # ROI) may stay put: matterport's weight decay, divided by the weight's size, is
    # below float32 resolution. Every trained stage moves, and nothing else does.
    assert {"rpn_conv_shared", "fpn_c5p5", "fpn_p2", "mrcnn_class_conv1",
            "mrcnn_class_logits"} <= changed
    assert all(heads.fullmatch(name) for name in changed), changed
    assert model.epoch == 1

    model.train(dataset, None, 0.01, epochs=2, layers="3+", seed=0, workers=1, verbose=0)
    changed_paths = _changed(after_heads, _snapshot(model.keras_model))
    changed = {_layer_of(p) for p in changed_paths}
    assert {"res3a_branch2a", "res4a_branch2a", "res5a_branch2a", "bn3a_branch2a",
            "rpn_conv_shared", "mrcnn_class_conv1"} <= changed
    assert all(stage3_up.fullmatch(name) for name in changed), changed
    assert not changed & {"conv1", "bn_conv1", "res2a_branch2a", "bn2a_branch2a"}
    # Frozen BatchNorm (TRAIN_BN False): no moving statistics change anywhere.
    assert not any(p.endswith(("moving_mean", "moving_variance")) for p in changed_paths)
    assert model.epoch == 2
    assert {"mask_rcnn_tiny_0001.h5", "mask_rcnn_tiny_0002.h5"} <= set(
        os.listdir(model.log_dir))

    resumed = modellib.MaskRCNN("training", ResumeConfig(), str(tmp_path))
    last = resumed.find_last()
    assert last.endswith("mask_rcnn_tiny_0002.h5")
    resumed.load_weights(last, by_name=True)
    assert resumed.epoch == 2 and resumed.log_dir == model.log_dir
    assert not _changed(_snapshot(model.keras_model), _snapshot(resumed.keras_model))
    history = resumed.train(dataset, dataset, 0.01, epochs=3, layers="all", seed=0,
                            workers=2, verbose=0)
    assert history.epoch == [2]
    assert np.isfinite(history.history["val_mrcnn_mask_loss"][0])
    assert resumed.epoch == 3
    assert resumed.find_last() == os.path.join(model.log_dir, "mask_rcnn_tiny_0003.h5")
    # One loss log across the three calls: the resumed run appends epoch 2 (0-based).
    rows = _loss_rows(model.log_dir)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert rows[0]["val_mrcnn_mask_loss"] == "NA" and float(rows[2]["val_mrcnn_mask_loss"]) >= 0
    if training.tensorflow_available():
        assert os.path.isdir(os.path.join(model.log_dir, "train"))


def _loss_rows(log_dir) -> list[dict]:
    with open(os.path.join(log_dir, training.LOSS_LOG), newline="") as file:
        return list(csv.DictReader(file))


_WITHOUT_TENSORFLOW = textwrap.dedent("""
    import sys
    import warnings
    sys.modules["tensorflow"] = None  # as on a JAX-only machine: every import fails
    from mrcnn import model as modellib
    from tests.mrcnn.tiny_training import EllipseDataset
    from tests.mrcnn.test_train import ScheduleConfig

    model = modellib.MaskRCNN("training", ScheduleConfig(), sys.argv[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.train(EllipseDataset(2), None, 0.01, epochs=1, layers="heads",
                              seed=0, workers=1, verbose=0)
    print("LOSS", history.history["loss"][0])
    print("WARNINGS", [str(w.message) for w in caught if "TensorFlow" in str(w.message)])
    print("LOG_DIR", model.log_dir)
""")


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX-only machine: the JAX run")
def test_trains_without_tensorflow_and_logs_losses_to_csv(tmp_path):
    """Keras's TensorBoard callback needs tf.summary, which a JAX-only machine lacks."""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _WITHOUT_TENSORFLOW, str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines()
                 if line.startswith(("LOSS", "WARNINGS", "LOG_DIR")))
    assert "losses.csv" in lines["WARNINGS"]
    log_dir = lines["LOG_DIR"]
    assert sorted(os.listdir(log_dir)) == [training.LOSS_LOG, "mask_rcnn_tiny_0001.h5"]
    (row,) = _loss_rows(log_dir)
    assert row["epoch"] == "0"
    assert float(row["loss"]) == pytest.approx(float(lines["LOSS"]), rel=1e-6)
    assert float(row["mrcnn_class_loss"]) > 0


class RepeatConfig(ScheduleConfig):
    STEPS_PER_EPOCH = 4


def _batch_losses(log_dir) -> list[float]:
    keras.utils.set_random_seed(0)
    model = modellib.MaskRCNN("training", RepeatConfig(), str(log_dir))
    recorder = LossRecorder()
    model.train(EllipseDataset(4, seed=2), None, 0.01, epochs=2, layers="all", seed=0,
                workers=2, custom_callbacks=[recorder], verbose=0)
    return [step["loss"] for step in recorder.losses]


def test_same_seed_same_batches_and_losses_with_two_workers(tmp_path):
    """Two runs with one seed train on the same batches in the same order: Keras must not
    reorder the sequence's batches (its shuffle draws from the global `random`, which
    the worker threads reseed per image)."""
    first = _batch_losses(tmp_path / "a")
    assert len(first) == 8 and len(set(first)) == 8
    assert _batch_losses(tmp_path / "b") == first


class NaNConfig(ScheduleConfig):
    # An infinite weight makes the very first loss non-finite.
    LOSS_WEIGHTS = dict(TinyConfig.LOSS_WEIGHTS, rpn_class_loss=float("inf"))


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    model = modellib.MaskRCNN("training", NaNConfig(), str(tmp_path))
    with pytest.raises(NaNLossError, match=r"non-finite loss at epoch 1, step 1: .*loss=inf"):
        model.train(EllipseDataset(2), None, 0.01, epochs=1, layers="heads", seed=0,
                    workers=1, verbose=0)
    assert not [f for f in os.listdir(model.log_dir) if f.endswith(".h5")]


_TWO_DEVICES = textwrap.dedent("""
    import sys
    import keras
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from mrcnn import model as modellib
    from tests.mrcnn.tiny_training import EllipseDataset, TinyConfig

    class TwoDevices(TinyConfig):
        GPU_COUNT = 2
        IMAGES_PER_GPU = 1
        VALIDATION_STEPS = 0

    model = modellib.MaskRCNN("training", TwoDevices(), sys.argv[1])
    history = model.train(EllipseDataset(4), None, 0.01, epochs=1, layers="heads", seed=0,
                          workers=1, verbose=0)
    kernel = model.keras_model.get_layer("mrcnn_class_logits").kernel
    if keras.backend.backend() == "tensorflow":
        replicas = model.keras_model.distribute_strategy.num_replicas_in_sync
    else:
        replicas = len(kernel.value.sharding.device_set)
    print("REPLICAS", replicas)
    print("LOSS", history.history["loss"][0])
    print("CHECKPOINT", model.find_last())
""")


def test_one_epoch_on_two_logical_devices(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _TWO_DEVICES, str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines()
                 if line.startswith(("REPLICAS", "LOSS", "CHECKPOINT")))
    assert int(lines["REPLICAS"]) == 2
    assert np.isfinite(float(lines["LOSS"]))
    assert lines["CHECKPOINT"].endswith("mask_rcnn_tiny_0001.h5")
