"""mrcnn/training.py: layer regexes, log/checkpoint naming, resume, callbacks."""
from __future__ import annotations

import datetime
import json
import os

import h5py
import keras
import numpy as np
import pytest

from mrcnn import training

pytestmark = pytest.mark.backend_agnostic

REFERENCE_FILES = {"r50": "layers_r50_256_training.json",
                   "r101": "layers_coco_r101_training.json"}


def weighted_layer_names(contract: dict) -> list[str]:
    """Layers with weights in the reference, nested ones as outer/inner, in order."""
    names = []
    for layer in contract["layers"]:
        if layer.get("sublayers"):
            names += [f"{layer['name']}/{sub['name']}" for sub in layer["sublayers"]
                      if sub["weights"]]
        elif layer["weights"]:
            names.append(layer["name"])
    return names


# --- layer selection ------------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.parametrize("model", sorted(REFERENCE_FILES))
def test_select_layer_names_matches_matterport_reference(reference_dir, model):
    contract = json.loads((reference_dir / REFERENCE_FILES[model]).read_text())
    names = weighted_layer_names(contract)
    expected_counts = {"r50": {"heads": 27, "3+": 111, "4+": 85, "5+": 47, "all": 133},
                       "r101": {"heads": 27, "3+": 213, "4+": 187, "5+": 47, "all": 235}}
    for key, recorded in contract["train_layers_regex"].items():
        assert training.LAYER_REGEX[key] == recorded["regex"]
        selected = training.select_layer_names(names, key)
        assert selected == recorded["matched_layers"]
        assert len(selected) == expected_counts[model][key] == recorded["num_matched_layers"]


def test_select_layer_names_uses_fullmatch_and_custom_regexes():
    names = ["conv1", "res3a_branch2a", "bn3a_branch2a", "res2a_branch2a", "fpn_p2",
             "rpn_model/rpn_conv_shared", "mrcnn_mask", "my_mrcnn_extra"]
    assert training.select_layer_names(names, "heads") == [
        "fpn_p2", "rpn_model/rpn_conv_shared", "mrcnn_mask"]
    assert training.select_layer_names(names, "5+") == [
        "fpn_p2", "rpn_model/rpn_conv_shared", "mrcnn_mask"]
    assert training.select_layer_names(names, "3+")[:2] == ["res3a_branch2a", "bn3a_branch2a"]
    # A user regex: fullmatch, so "res3" alone selects nothing.
    assert training.select_layer_names(names, "res3") == []
    assert training.select_layer_names(names, r"res\d.*") == ["res3a_branch2a", "res2a_branch2a"]


@pytest.mark.parametrize("bad", ["(unclosed", 3, None])
def test_resolve_layer_regex_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="layers"):
        training.resolve_layer_regex(bad)


def _nested_model():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(2, name="rpn_conv_shared")(inner_in),
                        name="rpn_model")
    x_in = keras.Input((3,))
    x = keras.layers.Dense(4, name="res2a_branch2a")(x_in)
    x = keras.layers.BatchNormalization(name="bn5a_branch2a")(x)
    x = keras.layers.Activation("relu", name="res5a_out")(x)
    x = inner(x)
    x = keras.layers.Dense(2, name="mrcnn_class_logits")(x)
    return keras.Model(x_in, x, name="mask_rcnn")


def _trainable_paths(model):
    return sorted(v.path for v in model.trainable_weights)


def test_set_trainable_on_a_model_with_a_nested_model():
    model = _nested_model()
    assert training.set_trainable(model, "heads") == ["rpn_model/rpn_conv_shared",
                                                      "mrcnn_class_logits"]
    assert _trainable_paths(model) == sorted([
        "rpn_conv_shared/kernel", "rpn_conv_shared/bias",
        "mrcnn_class_logits/kernel", "mrcnn_class_logits/bias"])
    # A later, wider phase re-opens layers frozen by the earlier one.
    assert training.set_trainable(model, "5+") == [
        "bn5a_branch2a", "rpn_model/rpn_conv_shared", "mrcnn_class_logits"]
    assert "bn5a_branch2a/gamma" in _trainable_paths(model)
    assert "bn5a_branch2a/moving_mean" not in _trainable_paths(model)
    assert "res2a_branch2a/kernel" not in _trainable_paths(model)
    assert len(training.set_trainable(model, "all")) == 4
    assert len(model.trainable_weights) == 8


# --- optimizer ---------------------------------------------------------------------------

def test_optimizer_clips_by_the_global_norm_as_keras2_did():
    a = keras.Variable(np.zeros(1, np.float32))
    b = keras.Variable(np.zeros(1, np.float32))
    optimizer = training.build_optimizer(learning_rate=1.0, momentum=0.9, gradient_clip_norm=1.0)
    assert optimizer.momentum == pytest.approx(0.9)
    # Joint norm 5: both gradients shrink by 1/5 (per-variable clipping would give 1 and 1).
    optimizer.apply_gradients([(np.array([3.0], np.float32), a),
                               (np.array([4.0], np.float32), b)])
    updated = np.concatenate([keras.ops.convert_to_numpy(v) for v in (a, b)])
    np.testing.assert_allclose(updated, [-0.6, -0.8], rtol=1e-6)
    unclipped = training.build_optimizer(1.0, 0.0, None)
    c = keras.Variable(np.zeros(1, np.float32))
    unclipped.apply_gradients([(np.array([30.0], np.float32), c)])
    assert float(keras.ops.convert_to_numpy(c)[0]) == pytest.approx(-30.0)


# --- naming and resume ------------------------------------------------------------------

def test_log_dir_and_checkpoint_names():
    now = datetime.datetime(2026, 3, 7, 9, 5, 59)
    log_dir = training.log_dir_path("/logs", "Lungs", now)
    assert log_dir == os.path.join("/logs", "lungs20260307T0905")
    assert training.checkpoint_path(log_dir, "Lungs", 12) == os.path.join(
        log_dir, "mask_rcnn_lungs_0012.h5")
    template = training.checkpoint_path(log_dir, "Lungs")
    assert template.format(epoch=3).endswith("mask_rcnn_lungs_0003.h5")


def test_parse_checkpoint_path_round_trips_and_follows_matterport_regex():
    now = datetime.datetime(2017, 10, 29, 23, 15)
    path = training.checkpoint_path(training.log_dir_path("/x/logs", "coco", now), "coco", 7)
    assert training.parse_checkpoint_path(path) == (now, 7)
    windows = r"C:\logs\my-set20200102T0304\mask_rcnn_my-set_0160.h5"
    assert training.parse_checkpoint_path(windows) == (datetime.datetime(2020, 1, 2, 3, 4), 160)
    # Not the pattern: matterport then starts a fresh log dir at epoch 0.
    assert training.parse_checkpoint_path("mask_rcnn_coco.h5") is None
    assert training.parse_checkpoint_path("/logs/coco/mask_rcnn_coco_0003.h5") is None


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb"):
        pass


def test_find_last_picks_newest_dir_and_last_epoch(tmp_path):
    for rel in ["lungs20260101T0000/mask_rcnn_lungs_0009.h5",
                "lungs20260102T1200/mask_rcnn_lungs_0002.h5",
                "lungs20260102T1200/mask_rcnn_lungs_0010.h5",
                "lungs20260102T1200/.tmp-abc-mask_rcnn_lungs_0011.h5",
                "lungs20260102T1200/events.out.tfevents",
                # A config whose name only starts like ours, newer: not ours.
                "lungsx20270101T0000/mask_rcnn_lungsx_0001.h5"]:
        _touch(tmp_path / rel)
    found = training.find_last(str(tmp_path), "LUNGS")
    assert found == str(tmp_path / "lungs20260102T1200" / "mask_rcnn_lungs_0010.h5")
    assert training.parse_checkpoint_path(found)[1] == 10


def test_find_last_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        training.find_last(str(tmp_path / "nope"), "lungs")
    with pytest.raises(FileNotFoundError, match="no log directory"):
        training.find_last(str(tmp_path), "lungs")
    _touch(tmp_path / "lungs20260101T0000" / "mask_rcnn_lungs_0001.h5")
    (tmp_path / "lungs20260201T0000").mkdir()
    with pytest.raises(FileNotFoundError, match="lungs20260201T0000"):
        training.find_last(str(tmp_path), "lungs")


# --- callbacks ----------------------------------------------------------------------------

def _tiny_model():
    x_in = keras.Input((2,))
    model = keras.Model(x_in, keras.layers.Dense(1, name="mrcnn_out")(x_in))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def _save_h5(model, path):
    with h5py.File(path, "w") as f:
        for i, w in enumerate(model.get_weights()):
            f[f"w{i}"] = w


def test_atomic_checkpoint_writes_every_epoch_with_one_based_numbers(tmp_path):
    model = _tiny_model()
    seen_paths = []

    def save(m, path):
        seen_paths.append(path)
        _save_h5(m, path)

    template = training.checkpoint_path(str(tmp_path / "run20260101T0000"), "demo")
    x = np.ones((4, 2), np.float32)
    model.fit(x, x[:, :1], epochs=3, initial_epoch=1, verbose=0,
              callbacks=[training.AtomicCheckpoint(template, save)])
    assert sorted(os.listdir(tmp_path / "run20260101T0000")) == [
        "mask_rcnn_demo_0002.h5", "mask_rcnn_demo_0003.h5"]
    # Written under a temporary name in the same directory, then renamed.
    assert all(os.path.basename(p).startswith(".partial-") for p in seen_paths)
    assert {os.path.dirname(p) for p in seen_paths} == {str(tmp_path / "run20260101T0000")}
    with h5py.File(tmp_path / "run20260101T0000" / "mask_rcnn_demo_0003.h5") as f:
        np.testing.assert_array_equal(f["w0"][()], model.get_weights()[0])


def test_atomic_checkpoint_leaves_no_partial_file_when_saving_fails(tmp_path):
    model = _tiny_model()
    target = tmp_path / "mask_rcnn_demo_0001.h5"
    target.write_bytes(b"previous")

    def broken_save(m, path):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    callback = training.AtomicCheckpoint(str(tmp_path / "mask_rcnn_demo_{epoch:04d}.h5"),
                                         broken_save)
    callback.set_model(model)
    with pytest.raises(OSError, match="disk full"):
        callback.on_epoch_end(0)
    assert os.listdir(tmp_path) == ["mask_rcnn_demo_0001.h5"]
    assert target.read_bytes() == b"previous"


def test_atomic_checkpoint_needs_an_epoch_field():
    with pytest.raises(ValueError, match="epoch"):
        training.AtomicCheckpoint("/tmp/weights.h5", _save_h5)


def test_stop_on_nan_names_epoch_and_step():
    model = _tiny_model()
    x = np.ones((6, 2), np.float32)
    y = np.ones((6, 1), np.float32)
    y[4] = np.nan     # batch_size 2: the third step of the epoch
    saved = []
    callbacks = [training.StopOnNaN(),
                 training.AtomicCheckpoint("/nonexistent/{epoch:04d}.h5",
                                           lambda m, p: saved.append(p))]
    with pytest.raises(training.NaNLossError, match=r"epoch 1, step 3: loss=nan"):
        model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0,
                  callbacks=callbacks)
    assert model.stop_training
    assert saved == []


def test_stop_on_nan_lets_finite_training_run():
    model = _tiny_model()
    x = np.ones((4, 2), np.float32)
    history = model.fit(x, x[:, :1], batch_size=2, epochs=2, verbose=0,
                        callbacks=[training.StopOnNaN()])
    assert len(history.history["loss"]) == 2
