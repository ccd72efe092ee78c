"""DetectionLayer: generic layer checks, hand cases, matterport's recorded detections."""
from __future__ import annotations

import numpy as np
import pytest

from mrcnn.detection import DetectionLayer
from tests.mrcnn.layer_testing import jit_call, run_layer_test

pytestmark = pytest.mark.backend_agnostic

STD = [0.1, 0.1, 0.2, 0.2]


def image_meta(windows, size=101, num_classes=3):
    return np.array([[0, size, size, 3, size, size, 3, *window, 1] + [1] * num_classes
                     for window in windows], np.float32)


def one_hot_probs(class_ids, scores, num_classes=3):
    """[1, R, num_classes]: `scores` on `class_ids`, the rest spread evenly."""
    class_ids, scores = np.asarray(class_ids), np.asarray(scores, np.float32)
    rest = (1 - scores) / (num_classes - 1)
    probs = np.repeat(rest[:, None], num_classes, 1)
    probs[np.arange(len(class_ids)), class_ids] = scores
    return probs[None].astype(np.float32)


def detect(layer, rois, probs, deltas, meta):
    return jit_call(lambda *x: layer(list(x)), rois, probs, deltas, meta)


def layer_with(max_instances=6, min_confidence=0.7, nms_threshold=0.3):
    return DetectionLayer(detection_max_instances=max_instances,
                          detection_min_confidence=min_confidence,
                          detection_nms_threshold=nms_threshold, bbox_std_dev=STD)


def test_layer_contract():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0.2, 0.8, (2, 40, 2))
    rois = np.concatenate([centres - 0.1, centres + 0.1], -1).astype(np.float32)
    logits = rng.normal(0, 2, (2, 40, 3))
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    deltas = rng.normal(0, 1, (2, 40, 3, 4)).astype(np.float32)
    meta = image_meta([[0, 0, 101, 101], [10, 5, 90, 101]])
    kwargs = dict(detection_max_instances=9, detection_min_confidence=0.5,
                  detection_nms_threshold=0.3, bbox_std_dev=STD)
    detections = run_layer_test(DetectionLayer, kwargs, [rois, probs, deltas, meta])
    assert detections.shape == (2, 9, 6)
    real = detections[..., 4] > 0
    assert real.any()
    assert (detections[real][:, 5] >= 0.5).all()
    # Scores descend over the real rows, and padding rows are all zero.
    for image in range(2):
        scores = detections[image, real[image], 5]
        assert (np.diff(scores) <= 0).all()
        np.testing.assert_array_equal(detections[image, ~real[image]], 0.0)


def test_background_low_scores_and_per_class_nms():
    # Rows: 0 and 1 overlap (IoU 0.9) with class 1; 2 overlaps 0 with class 2;
    # 3 is background; 4 scores under the threshold; 5 scores exactly 0.7.
    rois = np.array([[[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.46, 0.5], [0.1, 0.1, 0.5, 0.5],
                      [0.6, 0.6, 0.9, 0.9], [0.6, 0.1, 0.9, 0.3], [0.6, 0.5, 0.7, 0.6]]],
                    np.float32)
    probs = one_hot_probs([1, 1, 2, 0, 2, 1], [0.9, 0.95, 0.8, 0.99, 0.69, 0.7])
    deltas = np.zeros((1, 6, 3, 4), np.float32)
    detections = detect(layer_with(), rois, probs, deltas,
                        image_meta([[0, 0, 101, 101]]))[0]
    np.testing.assert_array_equal(detections[:3, 4], [1, 2, 1])
    np.testing.assert_allclose(detections[:3, 5], [0.95, 0.8, 0.7], atol=1e-6)
    np.testing.assert_allclose(detections[:3, :4], rois[0, [1, 2, 5]], atol=1e-6)
    np.testing.assert_array_equal(detections[3:], 0.0)


def test_deltas_of_the_winning_class_and_window_clipping():
    rois = np.array([[[0.2, 0.2, 0.6, 0.6]]], np.float32)
    probs = one_hot_probs([2], [0.9])
    deltas = np.zeros((1, 1, 3, 4), np.float32)
    deltas[0, 0, 1] = [5.0, 5.0, 0.0, 0.0]      # another class: ignored
    deltas[0, 0, 2] = [1.0, 0.0, np.log(2) / 0.2, 0.0]  # dy * std * h = 0.04, h doubles
    # Window: rows 0..51 of a 101-pixel image -> normalized y2 = 50 / 100.
    detections = detect(layer_with(), rois, probs, deltas,
                        image_meta([[0, 0, 51, 101]]))[0]
    np.testing.assert_allclose(detections[0], [0.04, 0.2, 0.5, 0.6, 2, 0.9], atol=1e-6)


def test_equal_scores_keep_roi_order_and_cap_at_max_instances():
    centres = np.linspace(0.1, 0.9, 8)
    rois = np.stack([centres - 0.02, np.full(8, 0.1), centres + 0.02, np.full(8, 0.2)], -1)
    probs = one_hot_probs([1, 2] * 4, [0.8] * 8)
    detections = detect(layer_with(max_instances=5), rois[None].astype(np.float32), probs,
                        np.zeros((1, 8, 3, 4), np.float32), image_meta([[0, 0, 101, 101]]))[0]
    np.testing.assert_allclose(detections[:, 0], centres[:5] - 0.02, atol=1e-6)
    np.testing.assert_array_equal(detections[:, 4], [1, 2, 1, 2, 1])


def test_no_detection_gives_all_zeros():
    rois = np.array([[[0.1, 0.1, 0.5, 0.5]] * 4], np.float32)
    probs = one_hot_probs([0, 0, 1, 2], [0.9, 0.9, 0.3, 0.5])
    detections = detect(layer_with(), rois, probs, np.zeros((1, 4, 3, 4), np.float32),
                        image_meta([[0, 0, 101, 101]]))
    np.testing.assert_array_equal(detections, 0.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(detection_max_instances=0), "detection_max_instances"),
    (dict(bbox_std_dev=[0.1, 0.2]), "bbox_std_dev"),
])
def test_bad_arguments_raise(kwargs, match):
    args = dict(detection_max_instances=5, detection_min_confidence=0.7,
                detection_nms_threshold=0.3, bbox_std_dev=STD)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        DetectionLayer(**args)


@pytest.mark.shared_data
def test_reproduces_matterport_detections(reference_dir):
    # Tolerance: class ids and the count per image exact; boxes and scores
    # within 1e-6 absolute (TF is bit-exact; XLA FMAs move the last bit on JAX).
    case = np.load(reference_dir / "detect_cases.npz")
    layer = DetectionLayer(detection_max_instances=100, detection_min_confidence=0.7,
                           detection_nms_threshold=0.3, bbox_std_dev=STD)
    detections = detect(layer, case["raw.rpn_rois"], case["raw.mrcnn_class"],
                        case["raw.mrcnn_bbox"], case["image_metas"])
    expected = case["raw.mrcnn_detection"]
    np.testing.assert_array_equal(detections[..., 4], expected[..., 4])
    np.testing.assert_array_equal((detections[..., 4] > 0).sum(1), [35, 42, 40])
    np.testing.assert_allclose(detections, expected, rtol=0, atol=1e-6)
