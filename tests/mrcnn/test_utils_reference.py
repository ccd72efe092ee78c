"""mrcnn.utils (and the image/anchor helpers mrcnn.model re-exports) against
matterport's recorded cases, with the tolerances of tests/mrcnn/reference.py:
exact for ints and bools, rtol 1e-7 for float64, 1e-6 for float32, +-1 for resized
uint8 images, and the stable-tiebreak alternative for tie-dependent cases."""
from __future__ import annotations

import numpy as np
import pytest

from mrcnn import anchors, image, utils
from tests.mrcnn.reference import Case, assert_outputs_match, cases

UTILS_CASES = cases(module="mrcnn.utils")
# matterport kept these in model.py; here they live beside the utils they build on.
MODEL_CASES = {
    "compute_backbone_shapes": anchors.compute_backbone_shapes,
    "mold_image": image.mold_image,
    "unmold_image": image.unmold_image,
}


pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize("case", UTILS_CASES, ids=str)
def test_utils_case(case: Case) -> None:
    function = getattr(utils, case.function)
    if case.raises:
        with pytest.raises(ValueError, match="zero area"):
            case.run(function)
        return
    assert_outputs_match(case, case.run(function))


@pytest.mark.parametrize(
    "case", [c for name in MODEL_CASES for c in cases(name)], ids=str
)
def test_model_helper_case(case: Case) -> None:
    function = MODEL_CASES[case.function]
    if case.function in ("mold_image", "unmold_image"):
        # matterport's signature is (images, config); the case records only the images.
        result = case.run(lambda *args: function(*args, case.config()))
    else:
        result = case.run(function)
    assert_outputs_match(case, result)


def test_every_utils_function_is_covered() -> None:
    if not UTILS_CASES:
        pytest.skip("matterport reference data not found")
    recorded = {c.function for c in UTILS_CASES}
    assert recorded <= set(dir(utils)), recorded - set(dir(utils))


def _first(function: str, predicate=lambda c: True) -> Case:
    found = [c for c in cases(function) if predicate(c)]
    if not found:
        pytest.skip(f"no recorded {function} case")
    return found[0]


def test_harness_rejects_an_off_by_one_box() -> None:
    case = _first("extract_bboxes")
    boxes = case.run(utils.extract_bboxes)
    boxes[0, 2] += 1
    with pytest.raises(AssertionError):
        assert_outputs_match(case, boxes)


def test_harness_rejects_float32_drift_and_wrong_dtype() -> None:
    case = _first("apply_box_deltas", lambda c: c.expected()[0].size > 0)
    refined = case.run(utils.apply_box_deltas)
    with pytest.raises(AssertionError):
        assert_outputs_match(case, refined + 1e-3)
    with pytest.raises(AssertionError, match="dtype"):
        assert_outputs_match(case, refined.astype("float64"))


def test_harness_checks_python_types_of_resize_image() -> None:
    case = _first("resize_image", lambda c: c.expected()[2] == 1 and isinstance(c.expected()[2], int))
    out = list(case.run(utils.resize_image))
    out[2] = 1.0  # scale must stay the int 1
    with pytest.raises(AssertionError, match="int"):
        assert_outputs_match(case, tuple(out))
    out = list(case.run(utils.resize_image))
    out[1] = list(out[1])  # window is a tuple
    with pytest.raises(AssertionError, match="tuple"):
        assert_outputs_match(case, tuple(out))


def test_harness_accepts_the_stable_tiebreak_alternative() -> None:
    case = _first("non_max_suppression", lambda c: c.tie_dependent)
    stable = np.asarray(case.spec["pick_with_stable_tiebreak"], dtype=np.int32)
    assert_outputs_match(case, stable)
    with pytest.raises(AssertionError):
        assert_outputs_match(case, stable[::-1].copy())
