"""MaskRCNN's matterport surface: detect, detect_molded, run_graph, ancestor, and the
numpy methods replayed against matterport's recorded cases."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from mrcnn import weights
from mrcnn.config import Config
from mrcnn.backbone import resnet_graph
from mrcnn.model import MaskRCNN
from mrcnn.xla import use_xla
from tests.mrcnn.golden import detect_cases, golden_h5, golden_model  # noqa: F401 (fixtures)
from tests.mrcnn.reference import assert_outputs_match, cases


def _without_graph(config: Config) -> MaskRCNN:
    """A MaskRCNN holding only a config, as matterport's recorded cases called it."""
    model = MaskRCNN.__new__(MaskRCNN)
    model.config = config
    return model


@pytest.mark.parametrize("case", cases("MaskRCNN.mold_inputs") + cases("MaskRCNN.get_anchors")
                         + cases("MaskRCNN.unmold_detections"), ids=str)
def test_numpy_methods_match_matterport(case):
    method = case.function.split(".")[1]
    model = _without_graph(case.config())
    assert_outputs_match(case, case.run(getattr(model, method)))


def test_get_anchors_also_sets_pixel_anchors():
    class C(Config):
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 128
        BACKBONE = "resnet50"

    model = _without_graph(C())
    normalized = model.get_anchors((128, 128, 3))
    # 3 ratios per cell of 32x32, 16x16, 8x8, 4x4 and 2x2 feature maps.
    assert normalized.shape == (3 * (32 * 32 + 16 * 16 + 8 * 8 + 4 * 4 + 2 * 2), 4)
    np.testing.assert_allclose(normalized * 127 + np.array([0, 0, 1, 1]), model.anchors,
                               rtol=1e-5, atol=1e-3)


def test_mold_inputs_rejects_mixed_sizes():
    class C(Config):
        IMAGE_RESIZE_MODE = "pad64"
        IMAGE_MIN_DIM = 64
        IMAGE_MAX_DIM = 256

    model = _without_graph(C())
    images = [np.zeros((64, 64, 3), np.uint8), np.zeros((64, 128, 3), np.uint8)]
    with pytest.raises(ValueError, match="different shapes"):
        model.mold_inputs(images)


def test_modes(tmp_path):
    with pytest.raises(ValueError, match="config.NAME must be set to train"):
        MaskRCNN("training", Config(), str(tmp_path))
    with pytest.raises(ValueError, match="mode"):
        MaskRCNN("predict", Config(), str(tmp_path))


# ---------------------------------------------------------------- with the golden model
# These build matterport's seeded R50 model (BATCH_SIZE 3, 256x256).

def needs_model(test):
    for mark in (pytest.mark.backend_agnostic, pytest.mark.shared_data, pytest.mark.slow):
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def images(detect_cases):
    return [detect_cases[f"images.{i}"] for i in range(3)]


@pytest.fixture(scope="module")
def batch_results(golden_model, images):
    return golden_model.detect(images)


def _assert_same_result(a: dict, b: dict) -> None:
    assert sorted(a) == ["class_ids", "masks", "rois", "scores"]
    np.testing.assert_array_equal(a["rois"], b["rois"])
    np.testing.assert_array_equal(a["class_ids"], b["class_ids"])
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a["masks"], b["masks"])


@needs_model
def test_detect_one_image_pads_the_batch(golden_model, images, batch_results, capsys):
    (alone,) = golden_model.detect(images[:1], verbose=1)
    assert "Processing 1 images" in capsys.readouterr().out
    assert len(batch_results[0]["rois"]) > 0
    _assert_same_result(alone, batch_results[0])


@needs_model
def test_detect_more_images_than_batch_size(golden_model, images, batch_results):
    assert golden_model.config.BATCH_SIZE == 3
    results = golden_model.detect(images + [images[1]])
    assert len(results) == 4
    for got, want in zip(results, batch_results + [batch_results[1]]):
        _assert_same_result(got, want)
    assert golden_model.detect([]) == []


@needs_model
def test_detect_molded_matches_detect_without_resizing(golden_model, images, batch_results):
    molded, metas, _ = golden_model.mold_inputs(images)
    # 256x256 inputs are not resized: molded and original coordinates coincide.
    for got, want in zip(golden_model.detect_molded(molded, metas), batch_results):
        _assert_same_result(got, want)
    with pytest.raises(ValueError, match="image_metas"):
        golden_model.detect_molded(molded, metas[:2])


@needs_model
def test_run_graph_by_layer_name_and_tensor(golden_model, images, batch_results):
    keras_model = golden_model.keras_model
    out = golden_model.run_graph(images[:2], [
        ("rois", keras_model.get_layer("ROI").output),
        ("detections", "mrcnn_detection"),
        ("masks", "mrcnn_mask"),
        ("p2", "fpn_p2"),
    ])
    assert list(out) == ["rois", "detections", "masks", "p2"]
    config = golden_model.config
    assert out["rois"].shape == (2, config.POST_NMS_ROIS_INFERENCE, 4)
    assert out["detections"].shape == (2, config.DETECTION_MAX_INSTANCES, 6)
    assert out["masks"].shape == (2, config.DETECTION_MAX_INSTANCES, 28, 28, 2)
    assert out["p2"].shape == (2, 64, 64, 256)
    # The detections of run_graph are those detect() unmolds (run_graph's sub-model is not
    # XLA-compiled, hence float32 rounding apart).
    for i in range(2):
        count = len(batch_results[i]["rois"])
        assert (out["detections"][i, :, 4] > 0).sum() == count
        np.testing.assert_allclose(out["detections"][i, :count, 5], batch_results[i]["scores"],
                                   atol=1e-4)


@needs_model
def test_ancestor(golden_model):
    keras_model = golden_model.keras_model
    detections = keras_model.get_layer("mrcnn_detection").output
    assert golden_model.ancestor(detections, "ROI") is keras_model.get_layer("ROI").output
    assert golden_model.ancestor(detections, "fpn_p4") is keras_model.get_layer("fpn_p4").output
    rpn_class = keras_model.get_layer("rpn_class").output
    assert golden_model.ancestor(rpn_class, "mrcnn_detection") is None


@needs_model
def test_pad64_images_get_a_graph_of_their_size_on_the_same_weights(golden_model, images, tmp_path):
    class Pad64(Config):
        NAME = "pad64"
        IMAGES_PER_GPU = 1
        NUM_CLASSES = 2
        BACKBONE = "resnet50"
        IMAGE_RESIZE_MODE = "pad64"
        IMAGE_MIN_DIM = 64
        IMAGE_MAX_DIM = 256

    model = MaskRCNN("inference", Pad64(), str(tmp_path))
    model.keras_model.set_weights(golden_model.keras_model.get_weights())
    # 200x256 molds to 256x256 (the built size); 130x190 molds to 192x192.
    (same,) = model.detect([images[0][:200]])
    (other,) = model.detect([images[0][:130, :190]])
    assert other["masks"].shape[:2] == (130, 190)
    assert len(other["rois"]) > 0
    assert (other["rois"] >= 0).all() and (other["rois"][:, 2] <= 130).all()
    assert (other["rois"][:, 3] <= 190).all()
    assert same["masks"].shape[:2] == (200, 256)

    # The 192x192 graph runs keras_model's own variables (nothing copied per call) ...
    sized, built_size = model._detection_prefix((192, 192, 3)), model._detection_prefix((256, 256))
    assert sized is not built_size and len(sized.weights) > 300
    assert [id(v) for v in sized.weights] == [id(v) for v in built_size.weights]
    assert {id(v) for v in sized.weights} <= {id(v) for v in model.keras_model.weights}
    # ... and computes what a model built for 192x192 with those weights computes, also
    # after the weights change.
    molded, metas, _ = model.mold_inputs([images[0][:130, :190]])
    ((_, inputs),) = model._model_inputs(molded, metas)
    bias = model.keras_model.get_layer("mrcnn_class_logits").bias
    scores = []
    for change in (0.0, 1.5):  # a foreground class logit up: other scores, other boxes
        bias.assign(np.asarray(bias) + np.array([0.0, change]))
        scores.append(np.asarray(sized.predict_on_batch(inputs)[0])[..., 5])
        built = model.build("inference", model.config, (192, 192, 3))
        built.set_weights(model.keras_model.get_weights())
        built = keras.Model(built.inputs, [built.get_layer("mrcnn_detection").output,
                                           built.get_layer("roi_align_mask").output])
        for ours, theirs, name in zip(sized.predict_on_batch(inputs),
                                      built.predict_on_batch(inputs),
                                      ("detections", "roi_align_mask")):
            # Two compiled programs: float32 round-off through the 100 backbone layers.
            np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-3,
                                       atol=3e-3, err_msg=f"{name} after adding {change}")
    assert np.abs(scores[1] - scores[0]).max() > 0.05


@needs_model
def test_load_weights_in_order_and_with_exclude(golden_model, golden_h5, tmp_path):
    """Keras-2 files load in layer order too (our weighted layers follow matterport's)."""
    model = MaskRCNN("inference", golden_model.config, str(tmp_path))
    assert model.keras_model.jit_compile is use_xla()  # XLA except on a TensorFlow CPU
    model.load_weights(str(golden_h5), by_name=False)
    for ours, theirs in zip(model.keras_model.weights, golden_model.keras_model.weights):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=ours.path)

    fresh = MaskRCNN("inference", golden_model.config, str(tmp_path))
    before = [np.asarray(w) for w in fresh.keras_model.get_layer("mrcnn_mask").weights]
    fresh.load_weights(str(golden_h5), by_name=True, exclude=["mrcnn_mask"])
    after = [np.asarray(w) for w in fresh.keras_model.get_layer("mrcnn_mask").weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    np.testing.assert_array_equal(
        np.asarray(fresh.keras_model.get_layer("mrcnn_mask_deconv").weights[0]),
        np.asarray(golden_model.keras_model.get_layer("mrcnn_mask_deconv").weights[0]))


@needs_model
def test_saved_weights_give_the_same_detections(golden_model, images, batch_results, tmp_path):
    """save -> load into a fresh model -> detect() equal to the original's, in both the
    legacy Keras-2 layout (matterport's) and a Keras 3 .weights.h5 file."""
    for name in ("round_trip.h5", "round_trip.weights.h5"):
        path = weights.save_weights(golden_model.keras_model, tmp_path / name)
        fresh = MaskRCNN("inference", golden_model.config, str(tmp_path))
        fresh.load_weights(str(path), by_name=True)
        for got, want in zip(fresh.detect(images), batch_results):
            _assert_same_result(got, want)


@pytest.mark.backend_agnostic
def test_callable_backbone(tmp_path):
    """A callable BACKBONE builds the network; COMPUTE_BACKBONE_SHAPE gives the anchors."""
    calls = []

    def small_resnet(input_image, stage5, train_bn):
        calls.append((stage5, train_bn))
        return resnet_graph(input_image, "resnet50", stage5=stage5, train_bn=train_bn)

    class Custom(Config):
        NAME = "custom"
        IMAGES_PER_GPU = 1
        NUM_CLASSES = 3
        BACKBONE = staticmethod(small_resnet)
        COMPUTE_BACKBONE_SHAPE = staticmethod(
            lambda shape: np.array([[shape[0] // s, shape[1] // s] for s in (4, 8, 16, 32, 64)]))
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 128
        POST_NMS_ROIS_INFERENCE = 50
        DETECTION_MAX_INSTANCES = 10

    model = MaskRCNN("inference", Custom(), str(tmp_path))
    assert calls == [(True, False)]
    anchors = 3 * sum((128 // s) ** 2 for s in (4, 8, 16, 32, 64))
    assert [tuple(o.shape) for o in model.keras_model.outputs] == [
        (1, 10, 6), (1, 50, 3), (1, 50, 3, 4), (1, 10, 28, 28, 3), (1, 50, 4),
        (1, anchors, 2), (1, anchors, 4)]


def test_get_imagenet_weights_uses_the_keras_cache_without_network(golden_model, tmp_path,
                                                                   monkeypatch):
    cached = tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    cached.parent.mkdir()
    cached.write_bytes(b"already fetched")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert golden_model.get_imagenet_weights() == str(cached)
    cached.unlink()

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(RuntimeError, match="resnet50_weights_tf_dim_ordering"):
        golden_model.get_imagenet_weights()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("class1_bias", [1e4, 0.0, -1e4], ids=["all-rows", "some", "none"])
def test_detect_masks_only_the_kept_rows_and_matches_keras_model(tmp_path, class1_bias):
    """detect() runs the mask head on the rows holding detections (rounded up to a power
    of two), not on all DETECTION_MAX_INSTANCES; results equal keras_model's outputs."""
    from tests.mrcnn.tiny_training import TinyConfig

    class Tiny(TinyConfig):
        DETECTION_MIN_CONFIDENCE = 0.0
        IMAGES_PER_GPU = 2

    keras.utils.set_random_seed(0)
    model = MaskRCNN("inference", Tiny(), str(tmp_path))
    layer = model.keras_model.get_layer("mrcnn_class_logits")
    bias = np.zeros(layer.bias.shape, np.float32)
    bias[1] = class1_bias  # > 0: every ROI is class 1; < 0: none is
    layer.bias.assign(bias)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (50, 60, 3), dtype=np.uint8) for _ in range(3)]

    results = model.detect(images)
    kept = []  # detection rows of each image, before zero-area boxes are dropped
    molded, metas, windows = model.mold_inputs(images)
    anchors = model.get_anchors(molded.shape[1:])
    for i, image in enumerate(images):
        pair = [np.repeat(molded[i:i + 1], 2, 0).astype(np.float32),
                np.repeat(metas[i:i + 1], 2, 0).astype(np.float32)]
        outputs = model.keras_model.predict_on_batch([*pair, np.stack([anchors] * 2)])
        kept.append(int((np.asarray(outputs[0][0])[:, 4] != 0).sum()))
        want = MaskRCNN._result(*model.unmold_detections(
            np.asarray(outputs[0][0]), np.asarray(outputs[3][0]), image.shape,
            molded[i].shape, windows[i]))
        _assert_same_result(results[i], want)
    if class1_bias > 0:
        assert max(kept) > Tiny.DETECTION_MAX_INSTANCES // 2
    elif class1_bias < 0:
        assert kept == [0, 0, 0] and results[0]["masks"].shape == (50, 60, 0)
    # Batches [0, 1] and [2, pad]: one mask-head program per power of two needed.
    rows = {min(1 << max(max(kept[:2]) - 1, 0).bit_length(), 8),
            min(1 << max(kept[2] - 1, 0).bit_length(), 8)}
    assert sorted(key[1] for key in model._mask_heads) == sorted(rows)

    # The mask head shares keras_model's layers: weights set later are used.
    head = model.keras_model.get_layer("mrcnn_mask")
    head.bias.assign(head.bias.numpy() - 100.0)
    assert not any(r["masks"].any() for r in model.detect(images))
