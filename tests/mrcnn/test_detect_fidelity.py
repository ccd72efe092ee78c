"""detect() with matterport's seeded R50 weights reproduces matterport's detections.

Reference: ../shared/reference/matterport/detect_cases.npz (README section 5). The
weights file is rebuilt from the seeded recipe by make_golden_h5.py (seconds).

Tolerances (README section 5): features within 1e-4 of their scale (float32 rounding
of different conv algorithms); probabilities atol 1e-4, deltas 1e-4 of their scale;
final detections: same order, equal class ids, scores within 1e-4, boxes within 1 px,
mask IoU >= 0.98 per instance (mask probabilities sit near 0.5 by construction).
Near-ties (README section 5, plus one found here): proposals with RPN scores ~1e-5
apart may swap places; ROIs clipped to the bottom/right border may pool differently
(see _assert_rows_close), so up to two detections per image refined from such ROIs
may differ.
"""
from __future__ import annotations

import numpy as np
import pytest

from mrcnn.boxes import apply_box_deltas
from tests.mrcnn.golden import detect_cases, golden_h5, golden_model  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.backend_agnostic, pytest.mark.shared_data, pytest.mark.slow]

NUM_IMAGES = 3


@pytest.fixture(scope="module")
def cases(detect_cases):
    return detect_cases


@pytest.fixture(scope="module")
def model(golden_model):
    return golden_model


@pytest.fixture(scope="module")
def images(cases):
    return [cases[f"images.{i}"] for i in range(NUM_IMAGES)]


@pytest.fixture(scope="module")
def raw(model, cases):
    """keras_model outputs on matterport's own molded inputs."""
    anchors = np.broadcast_to(cases["anchors"], (NUM_IMAGES,) + cases["anchors"].shape)
    names = ["mrcnn_detection", "mrcnn_class", "mrcnn_bbox", "mrcnn_mask", "rpn_rois",
             "rpn_class", "rpn_bbox"]
    outputs = model.keras_model.predict_on_batch(
        [cases["molded_images"].astype(np.float32), cases["image_metas"].astype(np.float32),
         anchors])
    return dict(zip(names, (np.asarray(o) for o in outputs)))


def test_inputs_are_molded_as_matterport(model, cases, images):
    molded, metas, windows = model.mold_inputs(images)
    np.testing.assert_allclose(molded, cases["molded_images"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(metas, cases["image_metas"])
    np.testing.assert_array_equal(windows, cases["windows"])
    np.testing.assert_allclose(model.get_anchors(molded.shape[1:]), cases["anchors"],
                               rtol=1e-6, atol=1e-6)


def test_backbone_and_fpn_features(model, cases, images):
    names = ["res2c_out", "res3d_out", "res4f_out", "res5c_out",
             "fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "fpn_p6"]
    got = model.run_graph(images, [(name, name) for name in names])
    for name in names:
        want = cases[f"features_img0.{name}"]
        scale = np.abs(want).max()
        np.testing.assert_allclose(got[name][0], want, rtol=0, atol=1e-4 * scale,
                                   err_msg=name)


def test_rpn_outputs(raw, cases):
    np.testing.assert_allclose(raw["rpn_class"], cases["raw.rpn_class"], atol=1e-4, rtol=0)
    scale = np.abs(cases["raw.rpn_bbox"]).max()
    np.testing.assert_allclose(raw["rpn_bbox"], cases["raw.rpn_bbox"], atol=1e-4 * scale, rtol=0)


def _near_tie_order(got: np.ndarray, want: np.ndarray, atol: float, window: int = 3):
    """Index into `want` of each row of `got`, allowing swaps between near neighbours.

    Our RPN scores differ from matterport's by ~1e-5 (float32 conv rounding), so two
    proposals whose scores are that close can trade places (README section 5, near-ties).
    Every row must still match a reference row within `atol`, a few places away at most.
    """
    order = np.arange(len(got))
    for i in np.where(np.abs(got - want).max(axis=-1) > atol)[0]:
        lo, hi = max(0, i - window), min(len(want), i + window + 1)
        distance = np.abs(want[lo:hi] - got[i]).max(axis=-1)
        assert distance.min() <= atol, f"row {i} matches no reference row near it"
        order[i] = lo + int(distance.argmin())
    assert np.array_equal(np.sort(order), np.arange(len(got))), "rows matched twice"
    return order


@pytest.fixture(scope="module")
def roi_orders(raw, cases):
    return [_near_tie_order(raw["rpn_rois"][i], cases["raw.rpn_rois"][i], atol=1e-4)
            for i in range(NUM_IMAGES)]


def test_proposals(raw, cases, roi_orders):
    for i, order in enumerate(roi_orders):
        # Swaps are rare: a handful of near-tied pairs among 1000 proposals.
        assert (order != np.arange(len(order))).sum() <= 20, f"image {i}"
        np.testing.assert_allclose(raw["rpn_rois"][i], cases["raw.rpn_rois"][i][order],
                                   atol=1e-4, rtol=0)


def _assert_rows_close(got, want, border, atol, what):
    """Rows within `atol`, except a few ROIs on the image border.

    A box clipped to the border (y2 or x2 exactly 1) samples the last row of its pooled
    grid at (H - 1) plus or minus one ulp: TF's crop_and_resize, which matterport used,
    zero-fills that row when the rounding falls outside. Our ROIs differ from matterport's
    by ~1e-6, so which border ROIs fall outside is a near-tie (4 of 3000 here).
    """
    error = np.abs(got - want).reshape(len(got), -1).max(axis=1)
    assert error[~border].max(initial=0) <= atol, f"{what}: {error[~border].max():.2e}"
    assert (error > atol).sum() <= 0.01 * len(got), f"{what}: {(error > atol).sum()} rows"


def test_head_outputs(raw, cases, roi_orders):
    for i, order in enumerate(roi_orders):
        rois = cases["raw.rpn_rois"][i][order]
        border = _border(rois)
        for name in ("mrcnn_class", "mrcnn_bbox"):
            want = cases[f"raw.{name}"][i][order]
            # Deltas reach ~4: 1e-4 of their scale, as for the features.
            atol = 1e-4 * max(1.0, np.abs(want).max())
            _assert_rows_close(raw[name][i], want, border, atol=atol, what=f"image {i} {name}")


def _source_rois(detections, rois, deltas, bbox_std_dev):
    """Index of the ROI each real detection row was refined from.

    Args:
        detections: [D, (y1, x1, y2, x2, class_id, score)] normalized, zero-padded.
        rois: [R, 4] normalized; deltas: [R, NUM_CLASSES, 4] (mrcnn_bbox).
    """
    sources = []
    for row in detections[detections[:, 4] > 0]:
        class_id = int(row[4])
        refined = np.clip(apply_box_deltas(rois, deltas[:, class_id] * bbox_std_dev), 0, 1)
        sources.append(int(np.abs(refined - row[:4]).max(axis=1).argmin()))
    return np.array(sources, dtype=int)


def _border(rois):
    """ROIs clipped to the bottom or right image border (the crop_and_resize near-tie)."""
    return (rois[:, 2] == 1) | (rois[:, 3] == 1)


def _match(ours: dict, theirs: dict, k: int, used: set) -> int | None:
    """Our detection equal to matterport's detection k, or None."""
    for j in range(len(ours["rois"])):
        if (j not in used and ours["class_ids"][j] == theirs["class_ids"][k]
                and np.abs(ours["rois"][j] - theirs["rois"][k]).max() <= 1
                and abs(ours["scores"][j] - theirs["scores"][k]) <= 1e-4):
            return j
    return None


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def test_detect_end_to_end(model, cases, images, raw):
    """Same detections, order, classes, scores, boxes and masks as matterport's detect().

    Allowed difference, per image: at most two detections whose source ROI lies on the
    bottom/right border (see _assert_rows_close) may differ or be missing on either side.
    """
    bbox_std_dev = np.asarray(model.config.BBOX_STD_DEV, np.float32)
    results = model.detect(images)
    assert len(results) == NUM_IMAGES
    for i, ours in enumerate(results):
        theirs = {key: cases[f"detect.{i}.{key}"]
                  for key in ("rois", "class_ids", "scores", "masks")}
        assert ours["rois"].dtype == np.int32 and ours["class_ids"].dtype == np.int32
        assert ours["masks"].dtype == bool
        assert ours["masks"].shape[:2] == images[i].shape[:2]
        # detect() rows follow the DetectionLayer rows; find each row's source ROI.
        their_border = _border(cases["raw.rpn_rois"][i])[_source_rois(
            cases["raw.mrcnn_detection"][i], cases["raw.rpn_rois"][i],
            cases["raw.mrcnn_bbox"][i], bbox_std_dev)]
        our_border = _border(raw["rpn_rois"][i])[_source_rois(
            raw["mrcnn_detection"][i], raw["rpn_rois"][i], raw["mrcnn_bbox"][i],
            bbox_std_dev)]
        assert len(their_border) == len(theirs["rois"])
        assert len(our_border) == len(ours["rois"])

        used, pairs, unmatched = set(), [], []
        for k in range(len(theirs["rois"])):
            j = _match(ours, theirs, k, used)
            if j is None:
                unmatched.append(k)
            else:
                used.add(j)
                pairs.append((j, k))
        extra = sorted(set(range(len(ours["rois"]))) - used)
        assert all(their_border[k] for k in unmatched), f"image {i}: lost {unmatched}"
        assert all(our_border[j] for j in extra), f"image {i}: extra {extra}"
        assert len(unmatched) <= 2 and len(extra) <= 2, f"image {i}: {unmatched}, {extra}"
        # Same order: matched pairs ascend together.
        assert [j for j, _ in pairs] == sorted(j for j, _ in pairs), f"image {i}: order"
        for j, k in pairs:
            iou = _mask_iou(ours["masks"][..., j], theirs["masks"][..., k])
            assert iou >= 0.98, f"image {i}, detection {k}: mask IoU {iou:.4f}"
