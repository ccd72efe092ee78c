"""mrcnn.masks: the fast unmolding of predicted masks against skimage's resize.

unmold_mask used to call mrcnn.image.resize (skimage) per detection; it now blends
rows and columns itself. These tests hold it to skimage's result: the float values
within one unit in the last place, the thresholded masks exactly.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn.image import resize
from mrcnn.masks import _resize_probabilities, unmold_mask, unmold_masks


def _skimage_unmold(mask: np.ndarray, bbox, shape) -> np.ndarray:
    """The previous unmold_mask: skimage bilinear resize into the box, then >= 0.5."""
    y1, x1, y2, x2 = bbox
    full = np.zeros(tuple(shape[:2]), dtype=bool)
    if y2 > y1 and x2 > x1:
        full[y1:y2, x1:x2] = resize(mask, (y2 - y1, x2 - x1)) >= 0.5
    return full


def _sigmoid_mask(rng: np.random.Generator, size: int = 28, spread: float = 4.0) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-rng.normal(0.0, spread, (size, size))))).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), height=st.integers(1, 130), width=st.integers(1, 130),
       source=st.sampled_from([1, 2, 7, 28]))
def test_resize_probabilities_matches_skimage_within_one_ulp(seed, height, width, source):
    mask = _sigmoid_mask(np.random.default_rng(seed), source)
    ours = _resize_probabilities(mask, (height, width))
    theirs = resize(mask, (height, width))
    assert ours.dtype == theirs.dtype == np.float32
    assert ours.shape == theirs.shape == (height, width)
    np.testing.assert_array_max_ulp(ours, theirs, maxulp=1)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.uint8, bool])
def test_resize_probabilities_follows_skimage_dtype_rules(dtype):
    rng = np.random.default_rng(3)
    mask = _sigmoid_mask(rng)
    if dtype is np.uint8:
        mask = (mask * 255).astype(np.uint8)  # skimage scales integer images to [0, 1]
    elif dtype is bool:
        mask = mask > 0.5
    else:
        mask = mask.astype(dtype)
    ours = _resize_probabilities(mask, (61, 17))
    theirs = resize(mask, (61, 17))
    assert ours.dtype == theirs.dtype
    # Both sum in float64 in different orders; rounding to float32 hides most of it.
    np.testing.assert_array_max_ulp(ours, theirs, maxulp=1 if ours.dtype == np.float32 else 4)


def test_constant_mask_keeps_its_faint_edges_as_skimage_clips_them():
    # Upsampling blends the border with the outside 0 (0.6 -> ~0.4 at the edges);
    # skimage then clips back to the input's range [0.6, 0.6], so the whole box is set.
    mask = np.full((28, 28), 0.6, np.float32)
    full = unmold_mask(mask, np.array([10, 20, 110, 90]), (128, 128, 3))
    assert full.sum() == 100 * 70
    assert np.array_equal(full, _skimage_unmold(mask, (10, 20, 110, 90), (128, 128)))


def test_unmold_mask_matches_skimage_on_many_boxes():
    rng = np.random.default_rng(0)
    shape = (310, 300, 3)
    for _ in range(200):
        y1, x1 = rng.integers(0, 200, 2)
        h, w = rng.integers(0, 100, 2)
        bbox = np.array([y1, x1, y1 + h, x1 + w], np.int32)
        mask = _sigmoid_mask(rng, spread=float(rng.uniform(0.5, 8)))
        np.testing.assert_array_equal(unmold_mask(mask, bbox, shape),
                                      _skimage_unmold(mask, bbox, shape))


def test_unmold_masks_equals_stacked_unmold_mask():
    rng = np.random.default_rng(1)
    shape = (96, 128, 3)
    corners = rng.integers(0, 60, (12, 2))
    sizes = rng.integers(0, 40, (12, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1).astype(np.int32)
    masks = np.stack([_sigmoid_mask(rng) for _ in range(12)])
    expected = np.stack([unmold_mask(masks[i], boxes[i], shape) for i in range(12)], axis=-1)
    full = unmold_masks(masks, boxes, shape)
    assert full.dtype == bool and full.shape == (96, 128, 12)
    np.testing.assert_array_equal(full, expected)
    assert full[..., sizes.min(axis=1) == 0].sum() == 0  # zero-area boxes stay empty


def test_unmold_masks_without_detections_is_empty():
    full = unmold_masks(np.zeros((0, 28, 28), np.float32), np.zeros((0, 4), np.int32),
                        (50, 40, 3))
    assert full.shape == (50, 40, 0) and full.dtype == bool


@pytest.mark.parametrize("masks, boxes, words", [
    (np.zeros((28, 28)), np.zeros((1, 4), np.int32), ["masks", "(28, 28)"]),
    (np.zeros((2, 28, 28)), np.zeros((3, 4), np.int32), ["masks", "boxes", "(2, 28, 28)"]),
    (np.zeros((1, 28, 28)), np.zeros((1, 4), np.float32), ["boxes", "integer"]),
])
def test_unmold_masks_bad_input_names_the_argument(masks, boxes, words):
    with pytest.raises(ValueError) as error:
        unmold_masks(masks, boxes, (10, 10))
    for word in words:
        assert word in str(error.value)
