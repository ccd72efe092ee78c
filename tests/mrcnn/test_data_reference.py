"""mrcnn.data against the calls recorded from matterport (../shared/reference/matterport).

Deterministic cases must match under the README's tolerances (tests/mrcnn/reference.py).
The RNG-dependent ones are replayed with the recorded seed. build_detection_targets
and generate_random_rois draw exactly as matterport (the same np.random calls in the
same order), so they are compared exactly too. build_rpn_targets samples anchors
with its own O(sample) draws, so it is held to the README's invariants.
"""
from __future__ import annotations

import numpy as np
import pytest

from mrcnn import data
from mrcnn.dataset import Dataset
from tests.mrcnn.reference import Case, assert_outputs_match, cases

pytestmark = [pytest.mark.backend_agnostic, pytest.mark.shared_data]


def _ids(function: str) -> list[Case]:
    found = cases(function, module="mrcnn.model")
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason="reference cases not found"))]
    return found


def _exact(case: Case, result) -> None:
    """Compare every output exactly-within-tolerance, even for deterministic: false."""
    exact = Case({**case.spec, "deterministic": True})
    assert_outputs_match(exact, result)


@pytest.mark.parametrize("case", _ids("compose_image_meta"), ids=str)
def test_compose_image_meta(case):
    assert_outputs_match(case, case.run(data.compose_image_meta))


@pytest.mark.parametrize("case", _ids("parse_image_meta"), ids=str)
def test_parse_image_meta(case):
    assert_outputs_match(case, case.run(data.parse_image_meta))


@pytest.mark.parametrize("case", _ids("mold_image") + _ids("unmold_image"), ids=str)
def test_mold_and_unmold_image(case):
    # The recorded call lists the images only; the config comes from the case.
    function, config = getattr(data, case.function), case.config()
    assert_outputs_match(case, case.run(lambda images: function(images, config)))


@pytest.mark.parametrize("case", _ids("build_rpn_targets"), ids=str)
def test_build_rpn_targets(case):
    rpn_match, rpn_bbox = result = case.run(data.build_rpn_targets)
    assert_outputs_match(case, result)
    config = case.config()
    counts = case.spec["counts"]
    assert np.sum(rpn_match == 1) == counts["positive"]
    assert np.sum(rpn_match == -1) == counts["negative"]
    assert np.sum(rpn_match == 0) == counts["neutral"]
    if not case.deterministic:
        assert np.sum(rpn_match == 1) <= config.RPN_TRAIN_ANCHORS_PER_IMAGE // 2
        assert np.sum(rpn_match != 0) == config.RPN_TRAIN_ANCHORS_PER_IMAGE
    # One regression row per positive anchor, zero rows after them.
    assert not np.any(rpn_bbox[np.sum(rpn_match == 1):])


@pytest.mark.parametrize("case", [c for c in cases("build_rpn_targets") if not c.deterministic]
                         or [pytest.param(None, marks=pytest.mark.skip(reason="no cases"))],
                         ids=str)
def test_build_rpn_targets_subsamples_the_unsampled_labels(case):
    config = case.config()
    unsampled = type("Unsampled", (type(config),), {"RPN_TRAIN_ANCHORS_PER_IMAGE": 10**6})()
    sampled, sampled_bbox = case.run(data.build_rpn_targets)
    full, full_bbox = case.run(data.build_rpn_targets, config=unsampled)
    # Subsampling only neutralises anchors: kept labels are the full run's labels.
    kept = sampled != 0
    np.testing.assert_array_equal(sampled[kept], full[kept])
    half = config.RPN_TRAIN_ANCHORS_PER_IMAGE // 2
    assert np.sum(sampled == 1) == min(np.sum(full == 1), half)
    # The kept positives' targets are the full run's rows for those anchors, in order.
    full_rows = np.cumsum(full == 1) - 1
    positives = np.flatnonzero(sampled == 1)
    np.testing.assert_allclose(sampled_bbox[:len(positives)], full_bbox[full_rows[positives]])
    # Same seed, same draws.
    again, _ = case.run(data.build_rpn_targets)
    np.testing.assert_array_equal(again, sampled)


@pytest.mark.parametrize("case", _ids("build_detection_targets"), ids=str)
def test_build_detection_targets(case):
    rois, class_ids, bboxes, masks = result = case.run(data.build_detection_targets)
    assert_outputs_match(case, result)
    config = case.config()
    num_fg = case.spec["num_fg"]
    assert np.sum(class_ids > 0) == min(num_fg, int(config.TRAIN_ROIS_PER_IMAGE
                                                    * config.ROI_POSITIVE_RATIO))
    # Foreground first; background rows carry no box or mask target.
    assert np.all(class_ids[:np.sum(class_ids > 0)] > 0)
    background = class_ids == 0
    assert not np.any(bboxes[background]) and not np.any(masks[background])
    if not case.deterministic:
        _exact(case, result)


@pytest.mark.parametrize("case", _ids("generate_random_rois"), ids=str)
def test_generate_random_rois(case):
    rois = case.run(data.generate_random_rois)
    assert_outputs_match(case, rois)
    inputs = case.inputs()
    height, width = inputs["image_shape"][:2]
    assert np.all(rois[:, 2] > rois[:, 0]) and np.all(rois[:, 3] > rois[:, 1])
    assert rois.min() >= 0 and np.all(rois[:, 2] < height) and np.all(rois[:, 3] < width)
    # 90% of the ROIs lie within one box size of their GT box.
    gt_boxes = inputs["gt_boxes"]
    per_box = int(0.9 * inputs["count"] / len(gt_boxes))
    for i, (y1, x1, y2, x2) in enumerate(gt_boxes):
        near = rois[per_box * i:per_box * (i + 1)]
        h, w = y2 - y1, x2 - x1
        assert np.all(near[:, 0] >= y1 - h) and np.all(near[:, 2] < y2 + h)
        assert np.all(near[:, 1] >= x1 - w) and np.all(near[:, 3] < x2 + w)
    _exact(case, rois)


class _RecordedDataset(Dataset):
    """The in-memory dataset of the load_image_gt cases: classes BG, synth.1, synth.2."""

    def __init__(self, image_id: int, image: np.ndarray, masks: np.ndarray,
                 class_ids: np.ndarray):
        super().__init__()
        self.add_class("synth", 1, "synth.1")
        self.add_class("synth", 2, "synth.2")
        for i in range(image_id + 1):
            self.add_image("synth", i, path=f"synthetic-{i}")
        self.prepare()
        self._recorded = image, masks, class_ids

    def load_image(self, image_id):
        return self._recorded[0]

    def load_mask(self, image_id):
        return self._recorded[1], self._recorded[2]


@pytest.mark.parametrize("case", _ids("load_image_gt"), ids=str)
def test_load_image_gt(case):
    inputs = case.inputs()
    dataset = _RecordedDataset(inputs["image_id"], inputs["dataset_image"],
                               inputs["dataset_masks"], inputs["dataset_class_ids"])
    result = case.run(data.load_image_gt, dataset=dataset)
    assert_outputs_match(case, result)
    image, image_meta, class_ids, bbox, mask = result
    assert len(class_ids) == len(bbox) == mask.shape[-1]
    assert image_meta.shape == (case.config().IMAGE_META_SIZE,)
