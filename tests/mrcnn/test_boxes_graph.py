"""The keras.ops box twins at the bottom of mrcnn/boxes.py against their numpy originals."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from mrcnn import boxes

pytestmark = pytest.mark.backend_agnostic


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


def pixel_boxes(rng, shape, size=100):
    y1x1 = rng.uniform(0, size * 0.7, shape + (2,))
    hw = rng.uniform(1, size * 0.3, shape + (2,))
    return np.concatenate([y1x1, y1x1 + hw], -1).astype(np.float32)


def test_apply_box_deltas_graph_matches_numpy_batched():
    rng = np.random.default_rng(0)
    rois = pixel_boxes(rng, (2, 30))
    deltas = rng.normal(0, 0.3, (2, 30, 4)).astype(np.float32)
    got = numpy_of(boxes.apply_box_deltas_graph(rois, deltas))
    for image in range(2):
        np.testing.assert_allclose(got[image], boxes.apply_box_deltas(rois[image], deltas[image]),
                                   rtol=1e-6, atol=1e-4)


def test_clip_boxes_graph_per_image_window():
    rois = np.array([[[-5, 2, 50, 120]], [[10, -1, 300, 40]]], np.float32)
    windows = np.array([[0, 0, 100, 100], [20, 0, 60, 30]], np.float32)
    got = numpy_of(boxes.clip_boxes_graph(rois, windows))
    np.testing.assert_array_equal(got, [[[0, 2, 50, 100]], [[20, 0, 60, 30]]])
    single = numpy_of(boxes.clip_boxes_graph(rois[0], windows[1]))
    np.testing.assert_array_equal(single, [[20, 2, 50, 30]])


def test_norm_and_denorm_boxes_graph_match_numpy():
    rng = np.random.default_rng(1)
    pixels = np.round(pixel_boxes(rng, (3, 20), size=300)).astype(np.int32)
    shape = (300, 200)
    normalized = numpy_of(boxes.norm_boxes_graph(pixels, shape))
    np.testing.assert_allclose(normalized, boxes.norm_boxes(pixels, shape), rtol=1e-6, atol=1e-7)
    back = numpy_of(boxes.denorm_boxes_graph(normalized, shape))
    np.testing.assert_array_equal(back, pixels)
    # Per-image shapes, [batch, 1, 2], broadcast over the boxes.
    per_image = numpy_of(boxes.norm_boxes_graph(pixels[:, :1], np.array([[[300, 200]]] * 3)))
    np.testing.assert_allclose(per_image, normalized[:, :1], rtol=1e-6)


def test_overlaps_graph_matches_compute_overlaps_and_zero_padding_is_zero():
    rng = np.random.default_rng(2)
    a, b = pixel_boxes(rng, (2, 7)), pixel_boxes(rng, (2, 5))
    b[:, 0] = a[:, 3]  # one exact match per image
    b[:, -1] = 0.0     # a padding row
    a[:, -1] = 0.0
    got = numpy_of(boxes.overlaps_graph(a, b))
    assert got.shape == (2, 7, 5)
    for image in range(2):
        expected = boxes.compute_overlaps(a[image, :-1], b[image, :-1])
        np.testing.assert_allclose(got[image, :-1, :-1], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got[:, 3, 0], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(got[:, -1, :], 0.0)
    np.testing.assert_array_equal(got[:, :, -1], 0.0)


def test_box_refinement_graph_matches_numpy_and_inverts_apply_deltas():
    rng = np.random.default_rng(3)
    box = pixel_boxes(rng, (2, 7))
    gt_box = pixel_boxes(rng, (2, 7))
    deltas = numpy_of(boxes.box_refinement_graph(box, gt_box))
    expected = boxes.box_refinement(box.reshape(-1, 4), gt_box.reshape(-1, 4))
    np.testing.assert_allclose(deltas.reshape(-1, 4), expected, rtol=1e-5, atol=1e-5)
    rebuilt = numpy_of(boxes.apply_box_deltas_graph(box, deltas))
    np.testing.assert_allclose(rebuilt, gt_box, rtol=1e-4, atol=1e-3)


def test_numpy_box_functions_do_not_import_a_backend():
    import subprocess
    import sys

    code = ("import sys, mrcnn.utils, mrcnn.data; "
            "print(any(m in sys.modules for m in ('keras', 'tensorflow', 'jax')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
