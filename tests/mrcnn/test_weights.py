"""mrcnn/weights.py: legacy Keras-2 HDF5 weights (matterport's layout), Keras 3 files,
atomic saves, and the explicit downloads (never over the network here)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import urllib.error
import urllib.request
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from mrcnn import utils, weights
from mrcnn.config import Config

pytestmark = pytest.mark.backend_agnostic

ROOT = Path(__file__).resolve().parents[2]
HEADS = ["mrcnn_class_logits"]


def build_model(num_classes: int = 3, prefix: str = "") -> keras.Model:
    """A tiny model with matterport's layer kinds and names: Conv2D, BatchNorm, a nested
    rpn_model, Conv2DTranspose, Dense. `prefix` renames every named layer."""
    feature = keras.Input((None, None, 4), name=prefix + "input_rpn_feature_map")
    shared = keras.layers.Conv2D(6, 3, padding="same", activation="relu",
                                 name=prefix + "rpn_conv_shared")(feature)
    rpn_class = keras.layers.Conv2D(2, 1, name=prefix + "rpn_class_raw")(shared)
    rpn_bbox = keras.layers.Conv2D(4, 1, name=prefix + "rpn_bbox_pred")(shared)
    rpn = keras.Model(feature, [rpn_class, rpn_bbox], name=prefix + "rpn_model")

    image = keras.Input((8, 8, 3), name=prefix + "input_image")
    x = keras.layers.Conv2D(4, 3, padding="same", name=prefix + "conv1")(image)
    x = keras.layers.BatchNormalization(name=prefix + "bn_conv1")(x)
    x = keras.layers.Activation("relu")(x)
    rpn_class, rpn_bbox = rpn(x)
    mask = keras.layers.Conv2DTranspose(3, 2, strides=2, name=prefix + "mrcnn_mask_deconv")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(num_classes, name=prefix + "mrcnn_class_logits")(pooled)
    return keras.Model(image, [rpn_class, rpn_bbox, mask, logits], name=prefix + "tiny")


def randomize(model: keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.standard_normal(tuple(variable.shape)).astype("float32"))


def values(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def layer_values(model: keras.Model, name: str) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v) for v in model.get_layer(name).weights]


def assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


@pytest.fixture
def saved(tmp_path):
    """(model, path): a randomized tiny model and its legacy weights file."""
    model = build_model()
    randomize(model, seed=1)
    path = tmp_path / "tiny.h5"
    weights.save_weights(model, path)
    return model, path


@pytest.fixture(scope="module")
def golden_tools(reference_dir):
    """../shared/reference/make_golden_h5.py: the writer and comparer of the golden file."""
    script = reference_dir.parent / "make_golden_h5.py"
    spec = importlib.util.spec_from_file_location("make_golden_h5", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------
# Legacy layout

def test_round_trip_by_name_is_bit_exact(saved):
    model, path = saved
    fresh = build_model()
    report = weights.load_weights(fresh, path, by_name=True)
    assert_same(values(fresh), values(model))
    assert report.loaded == [l.name for l in model.layers if l.weights]
    assert report.missing == report.unused == report.skipped == report.excluded == []


def test_saved_layout_is_keras2s(saved):
    model, path = saved
    with h5py.File(path, "r") as f:
        assert list(f.attrs["layer_names"]) == [l.name for l in model.layers]
        assert f.attrs["backend"] == keras.backend.backend()
        assert f.attrs["keras_version"] == keras.__version__
        assert list(f["conv1"].attrs["weight_names"]) == ["conv1/kernel:0", "conv1/bias:0"]
        assert list(f["bn_conv1"].attrs["weight_names"]) == [
            f"bn_conv1/{w}:0" for w in ("gamma", "beta", "moving_mean", "moving_variance")]
        assert list(f["rpn_model"].attrs["weight_names"]) == [
            f"{layer}/{w}:0" for layer in ("rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred")
            for w in ("kernel", "bias")]
        assert f["rpn_model/rpn_conv_shared/kernel:0"].shape == (3, 3, 4, 6)
        assert f["mrcnn_mask_deconv/mrcnn_mask_deconv/kernel:0"].shape == (2, 2, 3, 4)
        weightless = model.layers[0].name
        assert f[weightless].attrs["weight_names"].dtype == np.float64
        assert f[weightless].attrs["weight_names"].shape == (0,)


def test_layout_equals_matterports_writer(tmp_path, golden_tools):
    """A file written by the golden file's own writer (the layout of mask_rcnn_coco.h5)
    loads, and our save of it is identical object by object, attribute types included."""
    model = build_model()
    names = {"conv1": ["kernel", "bias"],
             "bn_conv1": ["gamma", "beta", "moving_mean", "moving_variance"],
             "mrcnn_mask_deconv": ["kernel", "bias"], "mrcnn_class_logits": ["kernel", "bias"]}
    rng = np.random.default_rng(7)
    layers, arrays = [], {}
    for layer in model.layers:
        if layer.name == "rpn_model":
            weight_names = [f"{sub}/{w}:0" for sub in
                            ("rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred")
                            for w in ("kernel", "bias")]
        else:
            weight_names = [f"{layer.name}/{w}:0" for w in names.get(layer.name, [])]
        shapes = [list(v.shape) for v in layer.weights]
        for name, shape in zip(weight_names, shapes):
            arrays[(layer.name, name)] = rng.standard_normal(shape).astype("float32")
        layers.append({"layer_name": layer.name, "weight_names": weight_names,
                       "shapes": shapes, "dtypes": ["float32"] * len(shapes)})
    structure = {"root_attrs": {"layer_names": [l.name for l in model.layers],
                                "backend": keras.backend.backend(),
                                "keras_version": keras.__version__},
                 "layers": layers}
    theirs, ours = tmp_path / "theirs.h5", tmp_path / "ours.h5"
    golden_tools.write_legacy_h5(theirs, structure, arrays)

    weights.load_weights(model, theirs, by_name=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("rpn_model").get_layer("rpn_bbox_pred").bias),
        arrays[("rpn_model", "rpn_bbox_pred/bias:0")])
    weights.save_weights(model, ours)
    assert golden_tools.compare(theirs, ours)


def test_in_order_ignores_names_and_by_name_matches_none(saved):
    model, path = saved
    other = build_model(prefix="other_")
    before = values(other)
    # By name nothing matches: an error naming the file, and nothing assigned.
    with pytest.raises(ValueError, match=r"tiny\.h5: none of its 5 layers with weights is "
                       r"named like a layer of the model \(file: \['conv1'"):
        weights.load_weights(other, path, by_name=True)
    assert_same(values(other), before)

    report = weights.load_weights(other, path, by_name=False)
    assert report.loaded == [l.name for l in other.layers if l.weights]
    assert_same(values(other), values(model))


def test_in_order_layer_count_mismatch(saved, tmp_path):
    _, path = saved
    image = keras.Input((8, 8, 3))
    small = keras.Model(image, keras.layers.Conv2D(4, 3, name="conv1")(image))
    with pytest.raises(ValueError, match=r"tiny\.h5 has 5 layers with weights, the model has 1"):
        weights.load_weights(small, path)
    # By name the one common layer loads.
    assert weights.load_weights(small, path, by_name=True).loaded == ["conv1"]


def test_by_name_reports_missing_and_unused_layers(saved):
    """A partial match loads what both have, warns about the model's layers the file
    lacks (they keep their values) and lists the file's layers the model lacks."""
    model, path = saved
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(image)
    partial = keras.Model(image, keras.layers.Conv2D(2, 1, name="extra")(x))
    extra_before = layer_values(partial, "extra")
    with pytest.warns(UserWarning, match=r"1 layers with weights are not in .*tiny\.h5"):
        report = weights.load_weights(partial, path, by_name=True)
    assert report.loaded == ["conv1"] and report.missing == ["extra"]
    assert report.unused == [l.name for l in model.layers if l.weights and l.name != "conv1"]
    assert_same(layer_values(partial, "conv1"), layer_values(model, "conv1"))
    assert_same(layer_values(partial, "extra"), extra_before)


@pytest.mark.parametrize("by_name", [True, False])
def test_exclude_leaves_layers_untouched(saved, by_name):
    model, path = saved
    fresh = build_model()
    kept = layer_values(fresh, "mrcnn_class_logits")
    report = weights.load_weights(fresh, path, by_name=by_name, exclude=HEADS)
    assert report.excluded == HEADS
    assert "mrcnn_class_logits" not in report.loaded
    assert_same(layer_values(fresh, "mrcnn_class_logits"), kept)
    assert_same(layer_values(fresh, "rpn_model"), layer_values(model, "rpn_model"))


def test_exclude_of_unknown_layer_warns(saved):
    _, path = saved
    with pytest.warns(UserWarning, match="mrcnn_nope"):
        weights.load_weights(build_model(), path, by_name=True, exclude=["mrcnn_nope"])
    with pytest.raises(TypeError, match="list of layer names"):
        weights.load_weights(build_model(), path, by_name=True, exclude="mrcnn_mask")


def test_shape_mismatch_names_layer_weight_and_shapes(saved):
    _, path = saved
    fresh = build_model(num_classes=5)
    before = values(fresh)
    with pytest.raises(ValueError) as info:
        weights.load_weights(fresh, path, by_name=True)
    message = str(info.value)
    assert "'mrcnn_class_logits'" in message and "'mrcnn_class_logits/kernel:0'" in message
    assert "model expects shape (4, 5)" in message and "has (4, 3)" in message
    assert str(path) in message
    assert_same(values(fresh), before)  # nothing assigned when the load fails


def test_skip_mismatch_skips_with_a_warning(saved):
    model, path = saved
    fresh = build_model(num_classes=5)
    kept = layer_values(fresh, "mrcnn_class_logits")
    with pytest.warns(UserWarning, match="mrcnn_class_logits/kernel:0"):
        report = weights.load_weights(fresh, path, by_name=True, skip_mismatch=True)
    assert report.skipped == ["mrcnn_class_logits"]
    assert_same(layer_values(fresh, "mrcnn_class_logits"), kept)
    assert_same(layer_values(fresh, "conv1"), layer_values(model, "conv1"))


def test_weight_count_mismatch(saved):
    _, path = saved
    image = keras.Input((8, 8, 3))
    no_bias = keras.Model(image, keras.layers.Conv2D(4, 3, use_bias=False, name="conv1")(image))
    with pytest.raises(ValueError, match="layer 'conv1' has 1 weights, file .* has 2"):
        weights.load_weights(no_bias, path, by_name=True)


def test_keras20_file_with_fixed_length_names_and_other_weight_names(saved, tmp_path):
    """Keras 2.0 (mask_rcnn_coco.h5) stored names as fixed-length bytes; variable names
    that differ from ours (TF's "_1" suffixes) are matched in order, as Keras 2 did."""
    model, path = saved
    old = tmp_path / "keras20.h5"
    old.write_bytes(path.read_bytes())
    with h5py.File(old, "a") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in f.attrs["layer_names"]])
        group = f["rpn_model"]
        renamed = [n.replace("/", "_1/") for n in group.attrs["weight_names"]]
        for before, after in zip(group.attrs["weight_names"], renamed):
            group.move(before, after)
        group.attrs["weight_names"] = np.array([n.encode() for n in renamed])
        assert f.attrs["layer_names"].dtype.kind == "S"
    fresh = build_model()
    weights.load_weights(fresh, old, by_name=True)
    assert_same(values(fresh), values(model))


def test_whole_model_file_reads_model_weights_group(saved, tmp_path):
    model, path = saved
    whole = tmp_path / "whole_model.h5"
    with h5py.File(path, "r") as src, h5py.File(whole, "w") as dst:
        group = dst.create_group("model_weights")
        for key, value in src.attrs.items():
            group.attrs[key] = value
        for name in src:
            src.copy(src[name], group, name=name)
    fresh = build_model()
    weights.load_weights(fresh, whole, by_name=True)
    assert_same(values(fresh), values(model))


def test_bad_files_name_the_file(saved, tmp_path):
    _, path = saved
    model = build_model()
    missing = tmp_path / "absent.h5"
    with pytest.raises(FileNotFoundError, match="absent.h5"):
        weights.load_weights(model, missing)

    text = tmp_path / "notes.h5"
    text.write_text("not weights")
    with pytest.raises(ValueError, match=r"notes\.h5 is not a readable HDF5 file"):
        weights.load_weights(model, text)

    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated\.h5 is not a readable HDF5 file"):
        weights.load_weights(model, truncated, by_name=True)

    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match=r"bare\.h5 has no 'layer_names' attribute"):
        weights.load_weights(model, bare)


def test_keras3_file_misnamed_gets_a_hint(tmp_path):
    model = build_model()
    keras3 = weights.save_weights(model, tmp_path / "ckpt.weights.h5")
    renamed = keras3.rename(tmp_path / "ckpt.h5")
    with pytest.raises(ValueError, match="Keras 3 weights file"):
        weights.load_weights(model, renamed)


def test_save_is_atomic(saved, monkeypatch):
    model, path = saved
    old = path.read_bytes()
    randomize(model, seed=2)
    real = h5py.Group.create_dataset
    calls = []

    def fail_on_third(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise OSError("No space left on device (simulated)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_third)
    with pytest.raises(OSError, match="simulated"):
        weights.save_weights(model, path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]

    monkeypatch.undo()
    weights.save_weights(model, path)
    fresh = build_model()
    weights.load_weights(fresh, path, by_name=True)
    assert_same(values(fresh), values(model))


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        weights.save_weights(build_model(), tmp_path / "nope" / "w.h5")


# --------------------------------------------------------------------------------------
# Keras 3 files

def test_keras3_round_trip_with_exclude(tmp_path):
    model = build_model()
    randomize(model, seed=3)
    path = weights.save_weights(model, tmp_path / "ckpt.weights.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.weights.h5"]

    fresh = build_model()
    kept = layer_values(fresh, "mrcnn_class_logits")
    report = weights.load_weights(fresh, path, by_name=True, exclude=HEADS)
    assert report.excluded == HEADS
    assert_same(layer_values(fresh, "mrcnn_class_logits"), kept)
    assert_same(layer_values(fresh, "bn_conv1"), layer_values(model, "bn_conv1"))
    assert_same(layer_values(fresh, "rpn_model"), layer_values(model, "rpn_model"))


# Keras's own notice when a load stops half way; the round trip above shows nested
# models do load.
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_keras3_bad_files_name_the_file(tmp_path):
    path = weights.save_weights(build_model(), tmp_path / "ckpt.weights.h5")
    with pytest.raises(ValueError, match=r"ckpt\.weights\.h5 does not fit the model"):
        weights.load_weights(build_model(num_classes=5), path)
    truncated = tmp_path / "cut.weights.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.weights\.h5 is not a readable HDF5 file"):
        weights.load_weights(build_model(), truncated)


# --------------------------------------------------------------------------------------
# Downloads (file:// URLs and a patched opener; never the network)

def published(tmp_path: Path, saved_path: Path, **hashes) -> weights.PretrainedFile:
    """A PretrainedFile served from a local copy of `saved_path`."""
    source = tmp_path / "server" / "asset.h5"
    source.parent.mkdir()
    source.write_bytes(saved_path.read_bytes())
    return weights.PretrainedFile(url=source.as_uri(), filename="asset.h5", **hashes)


def digests(path: Path) -> dict:
    data = path.read_bytes()
    return {"size": len(data), "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest()}


def test_download_verifies_and_writes(saved, tmp_path):
    _, path = saved
    spec = published(tmp_path, path, **digests(path))
    dest = weights.download_weights(spec, tmp_path / "deep" / "dir" / "w.h5", verbose=0)
    assert dest.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("field", ["size", "md5", "sha256"])
def test_download_with_wrong_hash_keeps_old_file(saved, tmp_path, field):
    _, path = saved
    wrong = digests(path)
    wrong[field] = wrong[field] + 1 if field == "size" else "0" * len(wrong[field])
    spec = published(tmp_path, path, **wrong)
    dest = tmp_path / "w.h5"
    dest.write_bytes(b"previous")
    with pytest.raises(ValueError, match=f"expected {wrong[field]}"):
        weights.download_weights(spec, dest, verbose=0)
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["server", "tiny.h5", "w.h5"])


def test_download_of_a_non_weights_file_is_refused(tmp_path):
    page = tmp_path / "error.html"
    page.write_text("<html>rate limited</html>")
    spec = weights.PretrainedFile(url=page.as_uri(), filename="w.h5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        weights.download_weights(spec, tmp_path / "w.h5", verbose=0)
    assert not (tmp_path / "w.h5").exists()


def offline(*args, **kwargs):
    """urllib.request.urlopen on a machine without network."""
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_offline_download_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dest = tmp_path / "mask_rcnn_coco.h5"
    with pytest.raises(RuntimeError) as info:
        utils.download_trained_weights(str(dest), verbose=0)
    message = str(info.value)
    assert weights.COCO_WEIGHTS.url in message and str(dest) in message
    assert "offline" in message
    assert not dest.exists()


def test_download_trained_weights_uses_the_coco_file(saved, tmp_path, monkeypatch):
    _, path = saved
    monkeypatch.setattr(weights, "COCO_WEIGHTS", published(tmp_path, path, **digests(path)))
    dest = tmp_path / "mask_rcnn_coco.h5"
    assert utils.download_trained_weights(dest, verbose=0) == dest
    assert dest.read_bytes() == path.read_bytes()


def test_imagenet_weights_cached_or_downloaded(saved, tmp_path, monkeypatch):
    _, path = saved
    spec = published(tmp_path, path, md5=digests(path)["md5"])
    monkeypatch.setattr(weights, "IMAGENET_WEIGHTS", spec)
    cache = tmp_path / "cache"
    first = weights.get_imagenet_weights(cache_dir=cache, verbose=0)
    assert first == cache / spec.filename and first.read_bytes() == path.read_bytes()

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert weights.get_imagenet_weights(cache_dir=cache, verbose=0) == first
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(RuntimeError, match=str(tmp_path / "keras_home" / "models")):
        weights.get_imagenet_weights(verbose=0)


def test_fetch_weights_command(saved, tmp_path, monkeypatch, capsys):
    _, path = saved
    spec = importlib.util.spec_from_file_location("fetch_weights",
                                                  ROOT / "weights" / "fetch_weights.py")
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    monkeypatch.setattr(weights, "COCO_WEIGHTS",
                        published(tmp_path, path, **digests(path)))
    target = tmp_path / "out"
    assert fetch.main(["coco", "--dir", str(target)]) == 0
    assert (target / "asset.h5").read_bytes() == path.read_bytes()
    assert fetch.main(["coco", "--dir", str(target)]) == 0
    assert "already there" in capsys.readouterr().out

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert fetch.main(["imagenet", "--dir", str(target)]) == 1
    assert "could not download" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# The real model and the golden R50 weights (matterport's own file layout)

@pytest.fixture(scope="module")
def golden_file(golden_tools, reference_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("golden") / "golden_r50.h5"
    golden_tools.build(out, reference_dir / "layers_r50_256_inference.json",
                       reference_dir / "golden_r50_parts.npz")
    return out


def weights_by_legacy_name(layer: keras.layers.Layer) -> dict[str, np.ndarray]:
    """Keras 2's names for a layer's weights: a nested Model's after its own layers."""
    owners = layer.layers if isinstance(layer, keras.Model) else [layer]
    return {f"{owner.name}/{v.name}:0": keras.ops.convert_to_numpy(v)
            for owner in owners for v in owner.weights}


def assert_model_equals_file(keras_model: keras.Model, path: Path) -> int:
    """Every weight of the model equals, bit for bit, the file's dataset of that name."""
    checked = 0
    with h5py.File(path, "r") as f:
        for name in f.attrs["layer_names"]:
            names = list(f[name].attrs["weight_names"])
            if not names:
                continue
            ours = weights_by_legacy_name(keras_model.get_layer(name))
            assert sorted(ours) == sorted(names), name
            for weight in names:
                saved = f[name][weight][()]
                assert ours[weight].dtype == saved.dtype and ours[weight].shape == saved.shape
                assert ours[weight].tobytes() == saved.tobytes(), weight
                checked += 1
    return checked


@pytest.fixture(scope="module")
def modellib():
    return pytest.importorskip("mrcnn.model")


@pytest.mark.slow
@pytest.mark.shared_data
def test_golden_r50_weights_load_and_save_bit_exactly(modellib, golden_file, golden_tools,
                                                       reference_dir, tmp_path):
    contract = json.loads((reference_dir / "layers_r50_256_inference.json").read_text())
    config = type("GoldenR50Config", (Config,), dict(contract["config_overrides"]))()
    model = modellib.MaskRCNN(mode="inference", config=config, model_dir=str(tmp_path))
    keras_model = model.keras_model

    report = model.load_weights(str(golden_file), by_name=True)
    weighted = [layer["layer_name"] for layer in contract["h5_save_weights_structure"]["layers"]
                if layer["weight_names"]]
    assert sorted(report.loaded) == sorted(weighted)
    assert report.missing == report.unused == report.skipped == []
    assert assert_model_equals_file(keras_model, golden_file) == len(keras_model.weights) == 384

    ours = weights.save_weights(keras_model, tmp_path / "mask_rcnn_golden_r50_0001.h5")
    with h5py.File(golden_file, "r") as theirs, h5py.File(ours, "r") as mine:
        # Weightless layers are not part of the contract (tf_keras auto-names them), so
        # layer_names is compared by string type and by the layers with weights only.
        for key in ("layer_names", "backend", "keras_version"):
            assert (golden_tools.describe_attr(mine, key)[0]
                    == golden_tools.describe_attr(theirs, key)[0]), key
        assert list(mine.attrs["layer_names"]) == [layer.name for layer in keras_model.layers]
        assert set(weighted) <= set(mine.attrs["layer_names"])
        for name in weighted:
            assert (golden_tools.describe_attr(mine[name], "weight_names")
                    == golden_tools.describe_attr(theirs[name], "weight_names")), name
            for weight in theirs[name].attrs["weight_names"]:
                a, b = theirs[name][weight], mine[name][weight]
                assert (a.dtype, a.shape, a.chunks, a.compression) == \
                    (b.dtype, b.shape, b.chunks, b.compression)
                assert a[()].tobytes() == b[()].tobytes(), weight

    for source, by_name in ((ours, True), (golden_file, False)):
        for variable in keras_model.weights:
            variable.assign(np.zeros(tuple(variable.shape), dtype=variable.dtype))
        # In order too: matterport's default, and its layers with weights come in the
        # same order as ours.
        assert len(weights.load_weights(keras_model, source, by_name=by_name).loaded) == 131
        assert assert_model_equals_file(keras_model, golden_file) == 384
