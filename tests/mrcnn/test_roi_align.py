"""PyramidROIAlign: generic layer checks, level rule, box order, matterport's crops."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from mrcnn import ops as mrcnn_ops
from mrcnn.roi_align import PyramidROIAlign, roi_levels_graph
from tests.mrcnn.layer_testing import jit_call, jit_gradients, run_layer_test

pytestmark = pytest.mark.backend_agnostic


def image_meta(batch, size, num_classes=2):
    row = [0, size, size, 3, size, size, 3, 0, 0, size, size, 1] + [1] * num_classes
    return np.array([row] * batch, np.float32)


def pyramid(rng, batch, size, channels=3):
    return [rng.normal(size=(batch, size // s, size // s, channels)).astype(np.float32)
            for s in (4, 8, 16, 32)]


def test_layer_contract():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0.2, 0.8, (2, 7, 2))
    sizes = rng.uniform(0.05, 0.9, (2, 7, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)
    inputs = [boxes, image_meta(2, 128)] + pyramid(rng, 2, 128)
    pooled = run_layer_test(PyramidROIAlign, {"pool_shape": (3, 5)}, inputs, atol=1e-5)
    assert pooled.shape == (2, 7, 3, 5, 3)


def test_levels_follow_matterport_rule():
    # 224 / sqrt(256 * 256) scales the canonical 224-pixel box to level 4.
    side = np.array([224, 112, 56, 28, 448, 896, 256, 158, 159, 0], np.float32) / 256
    boxes = np.stack([np.zeros_like(side), np.zeros_like(side), side, side], -1)
    levels = keras.ops.convert_to_numpy(roi_levels_graph(boxes, [256.0, 256.0, 3.0]))
    # 256: log2(256/224) = 0.19 -> 4. 158/224 -> log2 = -0.503 -> 3; 159 -> -0.494 -> 4.
    np.testing.assert_array_equal(levels, [4, 3, 2, 2, 5, 5, 4, 3, 4, 2])


def test_boxes_keep_their_order_and_image():
    rng = np.random.default_rng(1)
    maps = pyramid(rng, 2, 256)
    # Interleaved sizes, so that sorting by level would reorder them.
    sides = np.array([0.8, 0.1, 0.4, 0.2, 0.05, 0.9])
    y1 = rng.uniform(0, 0.1, 6)
    boxes = np.stack([y1, y1, y1 + sides, y1 + sides], -1).astype(np.float32)
    boxes = np.stack([boxes, boxes[::-1]])
    layer = PyramidROIAlign((4, 4))
    pooled = jit_call(lambda *x: layer(list(x)), boxes, image_meta(2, 256), *maps)
    levels = keras.ops.convert_to_numpy(roi_levels_graph(boxes, [256.0, 256.0]))
    assert len(set(levels.ravel())) >= 3
    for image in range(2):
        for row in range(6):
            expected = mrcnn_ops.crop_and_resize(
                maps[levels[image, row] - 2], boxes[image, row:row + 1],
                np.array([image], np.int32), (4, 4))
            np.testing.assert_allclose(pooled[image, row],
                                       keras.ops.convert_to_numpy(expected)[0], atol=1e-5)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="pool_shape"):
        PyramidROIAlign((7,))
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="4 feature maps"):
        PyramidROIAlign((2, 2))([np.zeros((1, 3, 4), np.float32), image_meta(1, 64)]
                                + pyramid(rng, 1, 64)[:3])


@pytest.mark.shared_data
@pytest.mark.parametrize("pool,key,boxes_of", [
    (7, "roi_align_classifier_img0_first16", lambda c: c["raw.rpn_rois"][:1, :16]),
    (14, "roi_align_mask_img0_first8", lambda c: c["raw.mrcnn_detection"][:1, :8, :4]),
])
def test_reproduces_matterport_crops(reference_dir, pool, key, boxes_of):
    # Tolerance: 1e-4 absolute on features of magnitude up to ~30 (TF is
    # bit-exact; XLA's fused sampling positions differ by float32 rounding).
    case = np.load(reference_dir / "detect_cases.npz")
    maps = [case[f"features_img0.fpn_p{level}"][None] for level in range(2, 6)]
    layer = PyramidROIAlign((pool, pool))
    pooled = jit_call(lambda *x: layer(list(x)), boxes_of(case),
                      case["image_metas"][:1], *maps)
    np.testing.assert_allclose(pooled[0], case[key], rtol=0, atol=1e-4)


def test_gradients_reach_the_features_not_the_boxes():
    rng = np.random.default_rng(3)
    maps = pyramid(rng, 1, 128)
    boxes = np.array([[[0.1, 0.1, 0.3, 0.3], [0.2, 0.1, 0.9, 0.95]]], np.float32)
    layer = PyramidROIAlign((2, 2))
    grads = jit_gradients(lambda b, *f: layer([b, image_meta(1, 128), *f]), boxes, *maps)
    np.testing.assert_array_equal(grads[0], 0.0)
    levels = keras.ops.convert_to_numpy(roi_levels_graph(boxes, [128.0, 128.0]))[0]
    # Each crop's 2 x 2 samples spread 4 pixels' worth of weight over its level.
    for level in range(2, 6):
        total = grads[level - 1].sum()
        np.testing.assert_allclose(total, 4 * 3 * np.sum(levels == level), rtol=1e-5)
