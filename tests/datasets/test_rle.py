"""datasets/rle.py: SIIM relative column-major RLE."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from datasets import rle
from datasets.siim import read_rle_csv

masks = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda shape: arrays(bool, shape))


@settings(max_examples=200, deadline=None)
@given(masks)
def test_round_trip_mask_to_rle_to_mask(mask):
    text = rle.encode(mask)
    np.testing.assert_array_equal(rle.decode(text, *mask.shape), mask)


@settings(max_examples=200, deadline=None)
@given(masks)
def test_round_trip_rle_to_mask_to_rle(mask):
    text = rle.encode(mask)
    assert rle.encode(rle.decode(text, *mask.shape)) == text
    if mask.any():
        values = [int(v) for v in text.split()]
        assert sum(values[1::2]) == mask.sum()  # lengths add up to the area


def test_pixels_are_numbered_down_columns():
    # 3 rows x 2 columns: flat pixels 1 and 2 are rows 1, 2 of column 0 in Fortran order.
    expected = np.array([[0, 0], [1, 0], [1, 0]], bool)
    np.testing.assert_array_equal(rle.decode("1 2", 3, 2), expected)
    assert rle.encode(expected) == "1 2"


def test_offsets_count_from_the_end_of_the_previous_run():
    # Runs at pixels 0 and 2 of a 1x4 row ("0 1" then skip 1 pixel).
    np.testing.assert_array_equal(rle.decode("0 1 1 1", 1, 4), [[1, 0, 1, 0]])
    np.testing.assert_array_equal(rle.decode("0 1 0 2", 1, 4), [[1, 1, 1, 0]])


@pytest.mark.parametrize("text", ["-1", " -1", "-1 "])
def test_minus_one_is_an_empty_mask(text):
    mask = rle.decode(text, 4, 5)
    assert mask.shape == (4, 5) and not mask.any()
    assert rle.encode(mask) == "-1"


@pytest.mark.parametrize("text, problem", [
    ("5 3 2", "odd number"),
    ("-2 3", "negative offset"),
    ("2 0", "below 1"),
    ("2 -3", "below 1"),
    ("10 11", "past the 4x5 image"),
    ("19 2", "past the 4x5 image"),
    ("3 x", "non-integer"),
    ("1.5 2", "non-integer"),
    ("", "empty RLE"),
])
def test_malformed_rle_names_the_image(text, problem):
    with pytest.raises(ValueError, match=problem) as error:
        rle.decode(text, 4, 5, image_id="1.2.3.ABC")
    assert "1.2.3.ABC" in str(error.value)


def test_last_pixel_is_reachable():
    mask = rle.decode("19 1", 4, 5)
    assert mask.sum() == 1 and mask[3, 4]


def test_encode_rejects_non_2d():
    with pytest.raises(ValueError, match="expected"):
        rle.encode(np.zeros((2, 2, 1), bool))


@pytest.mark.shared_data
def test_real_sample_positives_decode_to_plausible_masks(shared_data):
    table = read_rle_csv(str(shared_data / "siim" / "sample" / "train-rle-sample.csv"))
    positives = {i: runs for i, runs in table.items() if runs}
    assert positives, "the sample CSV has pneumothorax rows"
    for image_id, runs in positives.items():
        for text in runs:
            mask = rle.decode(text, 1024, 1024, image_id)
            area = sum(int(v) for v in text.split()[1::2])
            assert 0 < mask.sum() == area  # every run lies inside the image
            assert mask.mean() < 0.2  # a pneumothorax, not a whole lung field
            assert rle.encode(mask) == text
