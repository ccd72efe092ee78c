"""mrcnn/ops.py: top_k, crop_and_resize and padded NMS, pure vs fast vs oracles.

Oracles: hand-computed values (bilinear sampling of a linear ramp is exact),
mrcnn.boxes.non_max_suppression (matterport's numpy NMS) where scores have no
ties, and on TensorFlow the TF kernels themselves.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

from mrcnn import ops as mrcnn_ops
from mrcnn.boxes import non_max_suppression
from tests.mrcnn.layer_testing import jit_call

tf_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="compares against TensorFlow kernels")


def random_boxes(rng, shape, low=0.0, high=1.0, min_size=0.02, max_size=0.3):
    centres = rng.uniform(low, high, shape + (2,))
    sizes = rng.uniform(min_size, max_size, shape + (2,))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)


def ramp_image(height, width):
    """[1, H, W, 2]: channel 0 = 2y + 3x + 1, channel 1 = -y."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    return np.stack([2 * y + 3 * x + 1, -y], -1)[None]


# --------------------------------------------------------------------------- top_k

@pytest.mark.backend_agnostic
def test_top_k_puts_lower_index_first_among_ties():
    x = np.array([[1, 3, 3, 2, 3, 1, 5, 5], [0, 0, 0, 0, 1, 1, 0, 0]], np.float32)
    expected = np.array([[6, 7, 1, 2, 4], [4, 5, 0, 1, 2]])
    for fn in (mrcnn_ops.top_k, mrcnn_ops.top_k_pure):
        values, indices = fn(x, 5)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(indices), expected)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(values),
                                      np.take_along_axis(x, expected, 1))
        _, compiled = jit_call(lambda v: fn(v, 5), x)
        np.testing.assert_array_equal(compiled, expected)


@pytest.mark.backend_agnostic
def test_top_k_pure_equals_fast_on_many_ties():
    rng = np.random.default_rng(3)
    x = np.round(rng.uniform(0, 1, (3, 5000)), 2).astype(np.float32)
    fast = jit_call(lambda v: mrcnn_ops.top_k(v, 4000), x)
    pure = jit_call(lambda v: mrcnn_ops.top_k_pure(v, 4000), x)
    np.testing.assert_array_equal(fast[1], pure[1])
    np.testing.assert_array_equal(fast[0], pure[0])


# ------------------------------------------------------------------ crop_and_resize

@pytest.mark.backend_agnostic
def test_crop_and_resize_samples_a_ramp_exactly():
    image = ramp_image(9, 11)
    # Box corners at pixels (y, x) = (2, 1) and (6, 9): 5 x 3 samples land on
    # y = 2, 3, ..., 6 and x = 1, 5, 9.
    boxes = np.array([[2 / 8, 1 / 10, 6 / 8, 9 / 10]], np.float32)
    crops = keras.ops.convert_to_numpy(
        mrcnn_ops.crop_and_resize(image, boxes, np.array([0], np.int32), (5, 3)))
    y, x = np.meshgrid(np.arange(2, 7), [1, 5, 9], indexing="ij")
    np.testing.assert_allclose(crops[0, ..., 0], 2 * y + 3 * x + 1, atol=1e-4)
    np.testing.assert_allclose(crops[0, ..., 1], -y, atol=1e-5)

    # Between pixels: y in 0.5 steps, x at the box centre (crop width 1).
    boxes = np.array([[0.5 / 8, 0.1, 2.5 / 8, 0.5]], np.float32)
    crops = keras.ops.convert_to_numpy(
        mrcnn_ops.crop_and_resize(image, boxes, np.array([0], np.int32), (3, 1)))
    np.testing.assert_allclose(crops[0, :, 0, 0],
                               2 * np.array([0.5, 1.5, 2.5]) + 3 * 3.0 + 1, atol=1e-4)


@pytest.mark.backend_agnostic
def test_crop_and_resize_is_zero_outside_the_image_and_uses_box_indices():
    image = np.concatenate([ramp_image(5, 5), ramp_image(5, 5) + 100], 0)
    # Rows of this box go from y = -2 to 6 pixels: samples -2, 0, 2, 4, 6.
    boxes = np.array([[-0.5, 0.0, 1.5, 1.0]] * 2, np.float32)
    crops = keras.ops.convert_to_numpy(
        mrcnn_ops.crop_and_resize(image, boxes, np.array([1, 0], np.int32), (5, 2)))
    assert crops.shape == (2, 5, 2, 2)
    np.testing.assert_array_equal(crops[:, [0, 4]], 0.0)
    np.testing.assert_allclose(crops[1, 1:4, :, 0], [[1, 13], [5, 17], [9, 21]], atol=1e-4)
    np.testing.assert_allclose(crops[0, 1:4], crops[1, 1:4] + 100, atol=1e-4)


@pytest.mark.backend_agnostic
def test_crop_and_resize_keeps_the_border_row_under_jit():
    # Boxes clipped to exactly 1.0 are the norm (ProposalLayer, DetectionLayer);
    # an FMA in the compiled sampling position must not push the last row out.
    image = ramp_image(64, 64)
    rng = np.random.default_rng(0)
    y1 = rng.uniform(0, 0.9, 200).astype(np.float32)
    boxes = np.stack([y1, y1 * 0.5, np.ones_like(y1), np.ones_like(y1)], -1)
    indices = np.zeros(200, np.int32)
    crops = jit_call(lambda b: mrcnn_ops.crop_and_resize(image, b, indices, (7, 7)), boxes)
    np.testing.assert_allclose(crops[:, -1, -1, 0], 2 * 63 + 3 * 63 + 1, rtol=1e-5)
    assert (crops[..., 0] > 0).all()


@pytest.mark.backend_agnostic
def test_crop_and_resize_multilevel_matches_per_level_crops():
    rng = np.random.default_rng(1)
    maps = [rng.normal(size=(2, s, s, 3)).astype(np.float32) for s in (16, 8, 4)]
    boxes = random_boxes(rng, (12,))
    box_indices = rng.integers(0, 2, 12).astype(np.int32)
    levels = rng.integers(0, 3, 12).astype(np.int32)
    crops = jit_call(lambda b: mrcnn_ops.crop_and_resize_multilevel(
        maps, b, box_indices, levels, (4, 3)), boxes)
    for level, image in enumerate(maps):
        pick = levels == level
        single = keras.ops.convert_to_numpy(mrcnn_ops.crop_and_resize(
            image, boxes[pick], box_indices[pick], (4, 3)))
        np.testing.assert_allclose(crops[pick], single, atol=1e-5)


@pytest.mark.backend_agnostic
def test_crop_and_resize_multilevel_rejects_mismatched_channels():
    maps = [np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 2, 2, 5), np.float32)]
    with pytest.raises(ValueError, match=r"images\[1\]"):
        mrcnn_ops.crop_and_resize_multilevel(
            maps, np.zeros((1, 4), np.float32), np.zeros(1, np.int32),
            np.zeros(1, np.int32), (2, 2))


@tf_only
@pytest.mark.tf_only
@pytest.mark.parametrize("crop_size", [(7, 7), (14, 14), (1, 3)])
def test_crop_and_resize_equals_tf_image_crop_and_resize(crop_size):
    import tensorflow as tf

    rng = np.random.default_rng(2)
    image = rng.normal(size=(2, 13, 17, 5)).astype(np.float32)
    boxes = rng.uniform(-0.2, 1.2, (40, 4)).astype(np.float32)  # some flipped, some outside
    box_indices = rng.integers(0, 2, 40).astype(np.int32)
    expected = tf.image.crop_and_resize(image, boxes, box_indices, crop_size).numpy()
    got = keras.ops.convert_to_numpy(
        mrcnn_ops.crop_and_resize(image, boxes, box_indices, crop_size))
    np.testing.assert_allclose(got, expected, atol=1e-5)


# ---------------------------------------------------------------------------- NMS

@pytest.mark.backend_agnostic
@pytest.mark.parametrize("nms", [mrcnn_ops.non_max_suppression_padded,
                                 mrcnn_ops.non_max_suppression_padded_pure])
def test_nms_hand_case_ties_strict_threshold_and_empty_boxes(nms):
    boxes = np.array([[0, 0, 1, 2], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0],
                      [0, 0, 1, 1], [5, 5, 6, 6]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.7, 0.8, 0.8], np.float32)
    # Box 1 has IoU exactly 0.5 with box 0: kept (strict >). Box 4 ties box 1
    # and comes after it, then IoU 1 drops it. Empty boxes never overlap.
    indices, valid = nms(boxes, scores, 6, 0.5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(indices), [0, 1, 5, 2, 3, 0])
    assert int(valid) == 5
    # More outputs than boxes, compiled (XLA's own NMS needs padding then).
    indices, valid = jit_call(lambda b, s: nms(b, s, 8, 0.5), boxes, scores)
    np.testing.assert_array_equal(indices, [0, 1, 5, 2, 3, 0, 0, 0])
    assert int(valid) == 5
    # score_threshold is strict too; max_output_size truncates.
    indices, valid = nms(boxes, scores, 2, 0.5, score_threshold=0.7)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(indices), [0, 1])
    assert int(valid) == 2
    indices, valid = nms(boxes, scores, 4, 0.5, score_threshold=0.95)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(indices), [0, 0, 0, 0])
    assert int(valid) == 0


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("num_boxes,max_output", [(700, 300), (40, 100), (600, 600)])
def test_nms_pure_matches_matterport_numpy_nms(num_boxes, max_output):
    rng = np.random.default_rng(num_boxes)
    boxes = random_boxes(rng, (2, num_boxes))
    scores = np.stack([rng.permutation(num_boxes) for _ in range(2)]).astype(np.float32)
    scores /= num_boxes  # distinct: matterport's unstable argsort cannot differ
    indices, valid = jit_call(lambda b, s: mrcnn_ops.non_max_suppression_padded_pure(
        b, s, max_output, 0.5, score_threshold=0.1), boxes, scores)
    for image in range(2):
        live = np.flatnonzero(scores[image] > 0.1)
        expected = live[non_max_suppression(boxes[image, live], scores[image, live], 0.5)]
        expected = expected[:max_output]
        assert valid[image] == len(expected)
        np.testing.assert_array_equal(indices[image, :len(expected)], expected)
        np.testing.assert_array_equal(indices[image, len(expected):], 0)


@pytest.mark.backend_agnostic
def test_nms_breaks_score_ties_by_lower_index():
    rng = np.random.default_rng(8)
    boxes = random_boxes(rng, (2, 400), max_size=0.4)
    scores = np.round(rng.uniform(0, 1, (2, 400)), 1).astype(np.float32)  # ~40 per value
    indices, valid = jit_call(lambda b, s: mrcnn_ops.non_max_suppression_padded(
        b, s, 400, 0.4), boxes, scores)
    for image in range(2):
        # Distinct ranks in (descending score, ascending index) order turn
        # matterport's tie-sensitive numpy NMS into an exact oracle.
        order = np.lexsort((np.arange(400), -scores[image]))
        ranks = np.empty(400, np.float32)
        ranks[order] = np.arange(400, 0, -1)
        expected = non_max_suppression(boxes[image], ranks, 0.4)
        assert valid[image] == len(expected)
        np.testing.assert_array_equal(indices[image, :len(expected)], expected)


@pytest.mark.backend_agnostic
def test_nms_with_class_ids_is_per_class_nms():
    rng = np.random.default_rng(5)
    boxes = random_boxes(rng, (2, 300), max_size=0.5)
    scores = np.stack([rng.permutation(300) for _ in range(2)]).astype(np.float32) / 300
    classes = rng.integers(0, 3, (2, 300)).astype(np.int32)
    indices, valid = jit_call(lambda b, s, c: mrcnn_ops.non_max_suppression_padded(
        b, s, 60, 0.3, class_ids=c), boxes, scores, classes)
    for image in range(2):
        kept = []
        for cls in range(3):
            members = np.flatnonzero(classes[image] == cls)
            kept += list(members[non_max_suppression(
                boxes[image, members], scores[image, members], 0.3)])
        kept = np.array(kept)
        expected = kept[np.argsort(-scores[image, kept], kind="stable")][:60]
        assert valid[image] == 60
        np.testing.assert_array_equal(indices[image], expected)


@pytest.mark.backend_agnostic
def test_nms_unbatched_and_compiled_agree():
    rng = np.random.default_rng(6)
    boxes = random_boxes(rng, (2, 500))
    scores = np.round(rng.uniform(0, 1, (2, 500)), 2).astype(np.float32)  # ties
    batched = jit_call(lambda b, s: mrcnn_ops.non_max_suppression_padded_pure(
        b, s, 200, 0.6), boxes, scores)
    for image in range(2):
        one = mrcnn_ops.non_max_suppression_padded_pure(boxes[image], scores[image], 200, 0.6)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(one[0]), batched[0][image])
        assert int(one[1]) == batched[1][image]


@tf_only
@pytest.mark.tf_only
def test_nms_tf_kernel_fast_path_equals_pure_and_tf_image_nms():
    import tensorflow as tf

    rng = np.random.default_rng(7)
    boxes = random_boxes(rng, (3, 800))
    boxes[:, :5] = 0.0
    scores = np.round(rng.uniform(0, 1, (3, 800)), 2).astype(np.float32)  # many ties
    # Eager: the dispatcher runs TF's kernel; compiled: the pure op.
    fast = keras.tree.map_structure(np.asarray, mrcnn_ops.non_max_suppression_padded(
        boxes, scores, 300, 0.5, score_threshold=0.05))
    pure = jit_call(lambda b, s: mrcnn_ops.non_max_suppression_padded(
        b, s, 300, 0.5, score_threshold=0.05), boxes, scores)
    np.testing.assert_array_equal(fast[0], pure[0])
    np.testing.assert_array_equal(fast[1], pure[1])
    for image in range(3):
        expected = tf.image.non_max_suppression(boxes[image], scores[image], 300, 0.5,
                                                score_threshold=0.05).numpy()
        assert pure[1][image] == len(expected)
        np.testing.assert_array_equal(pure[0][image, :len(expected)], expected)
