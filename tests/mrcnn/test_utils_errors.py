"""mrcnn.utils on bad input (clear ValueErrors naming the argument and the shape),
on empty input (no instances, no boxes), and invariants on inputs matterport's
recorded cases do not cover."""
from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mrcnn import anchors, image, utils
from mrcnn.config import Config

H, W = 24, 32
NO_MASKS = np.zeros((H, W, 0), dtype=bool)
NO_BOXES = np.zeros((0, 4), dtype=np.int32)


def _box_masks(boxes, shape=(H, W)) -> np.ndarray:
    masks = np.zeros(tuple(shape) + (len(boxes),), dtype=bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return masks


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: utils.extract_bboxes(np.zeros((H, W))), ["mask", "(24, 32)"]),
        (lambda: utils.compute_overlaps(np.zeros((5, 3)), np.zeros((2, 4))), ["boxes1", "(5, 3)"]),
        (lambda: utils.compute_overlaps(np.zeros((2, 4)), np.zeros(4)), ["boxes2", "(4,)"]),
        (lambda: utils.compute_iou(np.zeros((1, 4)), np.zeros((2, 4)), 1.0, np.ones(2)), ["box", "(1, 4)"]),
        (lambda: utils.non_max_suppression(np.zeros((3, 4)), np.zeros(2), 0.5), ["boxes", "scores", "(3, 4)", "(2,)"]),
        (lambda: utils.non_max_suppression(np.zeros((3, 4)), np.zeros((3, 1)), 0.5), ["scores", "(3, 1)"]),
        (lambda: utils.apply_box_deltas(np.zeros((3, 4)), np.zeros((2, 4))), ["boxes", "deltas", "(2, 4)"]),
        (lambda: utils.apply_box_deltas(np.zeros((3, 4)), np.zeros((3, 2))), ["deltas", "(3, 2)"]),
        (lambda: utils.box_refinement(np.zeros((3, 4)), np.zeros((4, 4))), ["box", "gt_box", "(4, 4)"]),
        (lambda: utils.norm_boxes(np.zeros((3, 5)), (64, 64)), ["boxes", "(3, 5)"]),
        (lambda: utils.denorm_boxes(np.zeros((3, 4)), (64,)), ["shape", "(64,)"]),
        (lambda: utils.trim_zeros(np.zeros(4)), ["x", "(4,)"]),
        (lambda: utils.compute_overlaps_masks(np.zeros((H, W, 1)), np.zeros((H, W + 1, 1))), ["masks1", "masks2", "(24, 33, 1)"]),
        (lambda: utils.compute_overlaps_masks(np.zeros((H, W)), NO_MASKS), ["masks1", "(24, 32)"]),
        (lambda: utils.resize_mask(np.zeros((H, W)), 2, [(0, 0)] * 3), ["mask", "(24, 32)"]),
        (lambda: utils.minimize_mask(np.zeros((2, 4), int), np.zeros((H, W, 3)), (7, 7)), ["bbox", "mask", "(2, 4)", "(24, 32, 3)"]),
        (lambda: utils.minimize_mask(np.array([[0, 0, 0, 5]]), np.ones((H, W, 1)), (7, 7)), ["bbox[0]", "zero area"]),
        (lambda: utils.expand_mask(np.zeros(4, int), np.zeros((7, 7, 1)), (H, W)), ["bbox", "(4,)"]),
        (lambda: utils.expand_mask(np.zeros((1, 4)), np.zeros((7, 7, 1)), (H, W)), ["bbox", "integer", "float64"]),
        (lambda: utils.minimize_mask(np.zeros((1, 3), int), np.zeros((H, W, 1)), (7, 7)), ["bbox", "(1, 3)"]),
        (lambda: utils.unmold_mask(np.zeros((28, 28, 1)), np.array([0, 0, 5, 5]), (H, W)), ["mask", "(28, 28, 1)"]),
        (lambda: utils.unmold_mask(np.zeros((28, 28)), np.array([[0, 0, 5, 5]]), (H, W)), ["bbox", "(1, 4)"]),
        (lambda: utils.resize_image(np.zeros(10), 8, 16), ["image", "(10,)"]),
        (lambda: utils.resize_image(np.zeros((8, 8, 3)), 8, 64, mode="stretch"), ["mode", "stretch"]),
        (lambda: utils.resize_image(np.zeros((8, 8, 3)), 8, None, mode="square"), ["max_dim", "square"]),
        (lambda: utils.resize_image(np.zeros((8, 8, 3)), 100, None, mode="pad64"), ["min_dim", "64", "100"]),
        (lambda: utils.resize_image(np.zeros((8, 8, 3)), None, 64, mode="crop"), ["min_dim", "crop"]),
        (lambda: utils.compute_matches(NO_BOXES, np.zeros(0), np.zeros((H, W)), NO_BOXES, np.zeros(0), np.zeros(0), NO_MASKS), ["gt_masks", "(24, 32)"]),
        (lambda: utils.compute_ap(np.zeros((2, 3)), np.zeros(2), NO_MASKS, NO_BOXES, np.zeros(0), np.zeros(0), NO_MASKS), ["gt_boxes", "(2, 3)"]),
        (lambda: utils.compute_ap(NO_BOXES, np.zeros(0), NO_MASKS, np.ones((2, 4)), np.ones(2), np.ones(2), np.ones((H, W, 1))), ["pred_masks", "(24, 32, 1)", "pred_boxes", "2"]),
        (lambda: utils.compute_matches(np.ones((1, 4)), np.ones(1), NO_MASKS, NO_BOXES, np.zeros(0), np.zeros(0), NO_MASKS), ["gt_masks", "gt_boxes", "1 non-zero"]),
        (lambda: utils.compute_recall(np.zeros((2, 4)), NO_BOXES, 0.5), ["gt_boxes", "(0, 4)"]),
        (lambda: utils.generate_pyramid_anchors((32, 64), [1], [(4, 4)], [4, 8], 1), ["scales", "feature_shapes", "2, 1 and 2"]),
        (lambda: utils.generate_anchors(32, [0.5, 0], (4, 4), 4, 1), ["ratios", "0"]),
        (lambda: anchors.compute_backbone_shapes(SimpleNamespace(BACKBONE="vgg", BACKBONE_STRIDES=[4]), (64, 64, 3)), ["BACKBONE", "vgg"]),
        (lambda: image.mold_image(np.zeros((8, 8, 4)), Config()), ["images", "(8, 8, 4)"]),
        (lambda: image.unmold_image(np.zeros((8, 8, 1)), Config()), ["normalized_images", "(8, 8, 1)"]),
        (lambda: utils.compute_overlaps(np.array([["a", "b", "c", "d"]]), np.zeros((1, 4))), ["boxes1", "numeric", "<U1"]),
    ],
)
def test_bad_input_raises_clear_value_error(call, names) -> None:
    with pytest.raises(ValueError) as info:
        call()
    for name in names:
        assert name in str(info.value), f"{name!r} not in {info.value}"


# ---------------------------------------------------------------- empty input

def test_no_instances_give_empty_results_of_the_right_shape() -> None:
    boxes = utils.extract_bboxes(NO_MASKS)
    assert boxes.shape == (0, 4) and boxes.dtype == np.int32
    assert utils.compute_overlaps(NO_BOXES, np.zeros((3, 4))).shape == (0, 3)
    assert utils.compute_overlaps_masks(NO_MASKS, _box_masks([(0, 0, 4, 4)])).shape == (0, 1)
    picks = utils.non_max_suppression(NO_BOXES, np.zeros(0, np.float32), 0.5)
    assert picks.shape == (0,) and picks.dtype == np.int32
    assert utils.apply_box_deltas(NO_BOXES, np.zeros((0, 4))).shape == (0, 4)
    assert utils.box_refinement(NO_BOXES, NO_BOXES).dtype == np.float32
    assert utils.trim_zeros(np.zeros((3, 4))).shape == (0, 4)
    assert utils.resize_mask(NO_MASKS, 2.0, [(1, 1), (2, 2), (0, 0)]).shape == (2 * H + 2, 2 * W + 4, 0)
    assert utils.minimize_mask(NO_BOXES, NO_MASKS, (7, 9)).shape == (7, 9, 0)
    assert utils.expand_mask(NO_BOXES, np.zeros((7, 9, 0), bool), (H, W, 3)).shape == (H, W, 0)


def test_ap_without_predictions_is_zero() -> None:
    gt = [(2, 3, 10, 12), (12, 14, 20, 30)]
    gt_masks = _box_masks(gt)
    mean_ap, precisions, recalls, overlaps = utils.compute_ap(
        np.array(gt), np.array([1, 1]), gt_masks, NO_BOXES, np.zeros(0, int),
        np.zeros(0, np.float32), NO_MASKS)
    assert mean_ap == 0.0 and overlaps.shape == (0, 2)
    np.testing.assert_array_equal(recalls, [0, 1])
    empty = utils.compute_ap(NO_BOXES, np.zeros(0, int), NO_MASKS, NO_BOXES, np.zeros(0, int),
                             np.zeros(0, np.float32), NO_MASKS)
    assert empty[0] == 0.0
    recall, ids = utils.compute_recall(np.zeros((0, 4)), np.array(gt, float), 0.5)
    assert recall == 0.0 and ids.shape == (0,)


def test_zero_area_boxes_paste_nothing() -> None:
    full = utils.expand_mask(np.array([[5, 5, 5, 9]]), np.ones((7, 7, 1), bool), (H, W))
    assert not full.any()
    assert not utils.unmold_mask(np.ones((28, 28), np.float32), np.array([3, 3, 3, 8]), (H, W)).any()


# ---------------------------------------------------------------- invariants

_box = st.tuples(st.integers(0, H - 2), st.integers(0, W - 2), st.integers(1, 12), st.integers(1, 12)).map(
    lambda t: (t[0], t[1], min(H, t[0] + t[2]), min(W, t[1] + t[3])))


@settings(max_examples=40, deadline=None)
@given(st.lists(_box, min_size=1, max_size=6))
def test_extract_bboxes_inverts_box_masks(boxes) -> None:
    np.testing.assert_array_equal(utils.extract_bboxes(_box_masks(boxes)), np.array(boxes))


@settings(max_examples=40, deadline=None)
@given(st.lists(_box, min_size=1, max_size=20), st.floats(0.0, 0.9), st.randoms(use_true_random=False))
def test_nms_is_greedy_with_strict_threshold(boxes, threshold, rnd) -> None:
    # With distinct scores these three properties define greedy NMS uniquely
    # (by induction down the score order).
    boxes = np.array(boxes, dtype=np.int32)
    scores = np.array(rnd.sample(range(len(boxes)), len(boxes)), dtype=np.float32)
    keep = utils.non_max_suppression(boxes, scores, threshold)
    assert keep.dtype == np.int32
    # NMS casts integer boxes to float32 and compares in float32 (NumPy 2 casts the
    # Python threshold to the array's dtype): an IoU of exactly 1/3 is 0.33333334
    # there, so compare at that precision too.
    overlaps = utils.compute_overlaps(boxes.astype(np.float32),
                                      boxes.astype(np.float32)).astype(np.float32)
    threshold = np.float32(threshold)
    assert np.all(np.diff(scores[keep]) < 0)
    for a in keep:
        for b in keep:
            assert a == b or overlaps[a, b] <= threshold
    for i in set(range(len(boxes))) - set(keep.tolist()):
        assert any(overlaps[i, k] > threshold and scores[k] > scores[i] for k in keep)


def test_nms_keeps_a_box_at_exactly_the_threshold() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 5, 10, 15]])  # IoU 50 / 150 = 1/3
    iou = utils.compute_overlaps(boxes.astype(np.float32), boxes.astype(np.float32))[0, 1]
    np.testing.assert_array_equal(
        utils.non_max_suppression(boxes, np.array([0.9, 0.8]), float(iou)), [0, 1])
    np.testing.assert_array_equal(
        utils.non_max_suppression(boxes, np.array([0.9, 0.8]), float(iou) - 1e-6), [0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_box, _box), min_size=1, max_size=8))
def test_box_refinement_round_trips_through_apply_box_deltas(pairs) -> None:
    boxes = np.array([p[0] for p in pairs], dtype=np.float32)
    gt = np.array([p[1] for p in pairs], dtype=np.float32)
    deltas = utils.box_refinement(boxes, gt)
    np.testing.assert_allclose(utils.apply_box_deltas(boxes, deltas), gt, rtol=1e-5, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.lists(_box, min_size=1, max_size=8))
def test_denorm_inverts_norm(boxes) -> None:
    boxes = np.array(boxes, dtype=np.int32)
    np.testing.assert_array_equal(utils.denorm_boxes(utils.norm_boxes(boxes, (H, W)), (H, W)), boxes)


@settings(max_examples=30, deadline=None)
@given(st.lists(_box, min_size=1, max_size=5))
def test_minimize_then_expand_recovers_box_masks(boxes) -> None:
    masks = _box_masks(boxes)
    bbox = utils.extract_bboxes(masks)
    mini = utils.minimize_mask(bbox, masks, (16, 16))
    assert mini.all()  # a solid box fills its own mini-mask
    np.testing.assert_array_equal(utils.expand_mask(bbox, mini, (H, W, 3)), masks)


@settings(max_examples=30, deadline=None)
@given(st.integers(10, 200), st.integers(10, 200), st.sampled_from(["square", "pad64", "crop"]),
       st.sampled_from([np.uint8, np.float32]))
@example(10, 128, "square", np.uint8)  # the short side asks to grow, the long side caps at 1.0
def test_resize_image_window_holds_the_resized_image(height, width, mode, dtype) -> None:
    rng = np.random.default_rng(height * 1000 + width)
    img = (rng.integers(1, 255, size=(height, width, 3))).astype(dtype)
    random.seed(0)
    out, window, scale, padding, crop = utils.resize_image(img, min_dim=64, max_dim=128, mode=mode)
    assert out.dtype == img.dtype
    y1, x1, y2, x2 = window
    if mode == "square":
        assert out.shape == (128, 128, 3)
    elif mode == "pad64":
        assert out.shape[0] % 64 == 0 and out.shape[1] % 64 == 0
    else:
        assert out.shape == (64, 64, 3) and crop[2:] == (64, 64)
    if mode != "crop":
        assert (y2 - y1, x2 - x1) == (round(height * scale), round(width * scale))
        assert padding[0] == (y1, out.shape[0] - y2) and padding[1] == (x1, out.shape[1] - x2)
        inside = np.zeros(out.shape[:2], bool)
        inside[y1:y2, x1:x2] = True
        assert not out[~inside].any()  # zero padding outside the window
    # An int scale means nothing was resized; 1.0 can still come out of the square
    # rule (max_dim / long side), as in matterport.
    assert not isinstance(scale, int) or scale == 1
    mask = np.ones((height, width, 1), bool)
    resized = utils.resize_mask(mask, scale, padding, crop)
    assert resized.shape[:2] == out.shape[:2]


def test_resize_image_square_cap_of_one_is_matterports_float() -> None:
    # min_dim asks for x6.4, max_dim caps it at 128 / 128: matterport returns the float
    # 1.0 and leaves the pixels as they are.
    img = np.random.default_rng(0).integers(0, 255, size=(10, 128, 3)).astype(np.uint8)
    out, window, scale, padding, _ = utils.resize_image(img, min_dim=64, max_dim=128, mode="square")
    assert type(scale) is float and scale == 1.0
    assert window == (59, 0, 69, 128) and padding[0] == (59, 59)
    np.testing.assert_array_equal(out[59:69], img)


def test_resize_image_crop_offsets_come_from_python_random() -> None:
    img = np.arange(100 * 90 * 3, dtype=np.uint8).reshape(100, 90, 3)
    random.seed(11)
    expected = (random.randint(0, 100 - 64), random.randint(0, 90 - 64))
    random.seed(11)
    out, _, scale, _, crop = utils.resize_image(img, min_dim=64, mode="crop")
    assert scale == 1 and crop == expected + (64, 64)
    np.testing.assert_array_equal(out, img[crop[0]:crop[0] + 64, crop[1]:crop[1] + 64])


def test_compute_ap_range_default_thresholds_and_verbose(capsys) -> None:
    gt = np.array([(2, 3, 10, 12), (12, 14, 20, 30)])
    masks = _box_masks(gt)
    # the second prediction covers 48 of 64 gt pixels: IoU 0.75
    pred = np.array([(2, 3, 10, 12), (12, 14, 18, 30)])
    args = (gt, np.array([1, 2]), masks, pred, np.array([1, 2]), np.array([0.9, 0.8]), _box_masks(pred))
    ap = utils.compute_ap_range(*args, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("AP @0.50-0.95:")
    per_threshold = [utils.compute_ap(*args, iou_threshold=t)[0] for t in np.arange(0.5, 1.0, 0.05)]
    assert ap == pytest.approx(np.mean(per_threshold))
    # np.arange makes the "0.75" threshold 0.7500000000000002, so IoU 0.75 matches
    # at 0.70 and at a literal 0.75 but not at matterport's sixth threshold.
    assert per_threshold[4] == 1.0 and per_threshold[5] == 0.5
    assert utils.compute_ap(*args, iou_threshold=0.75)[0] == 1.0


def test_compute_matches_score_threshold_cuts_on_iou_not_score() -> None:
    gt = np.array([(2, 3, 10, 12)])
    pred = np.array([(2, 3, 10, 12)])
    args = (gt, np.array([1]), _box_masks(gt), pred, np.array([1]), np.array([0.1], np.float32),
            _box_masks(pred))
    # a low score does not matter; an IoU (1.0) below score_threshold would
    assert utils.compute_matches(*args, score_threshold=0.5)[1][0] == 0
    assert utils.compute_matches(*args, score_threshold=1.5)[1][0] == -1
