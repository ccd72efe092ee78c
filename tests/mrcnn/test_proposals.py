"""ProposalLayer: generic layer checks, hand cases, matterport's recorded proposals."""
from __future__ import annotations

import numpy as np
import pytest

from mrcnn.proposals import ProposalLayer
from tests.mrcnn.layer_testing import jit_call, jit_gradients, run_layer_test

pytestmark = pytest.mark.backend_agnostic

STD = [0.1, 0.1, 0.2, 0.2]


def rpn_inputs(rng, batch, num_anchors):
    fg = rng.uniform(0, 1, (batch, num_anchors)).astype(np.float32)
    probs = np.stack([1 - fg, fg], -1)
    deltas = rng.normal(0, 1, (batch, num_anchors, 4)).astype(np.float32)
    centres = rng.uniform(0, 1, (num_anchors, 2))
    sizes = rng.uniform(0.05, 0.3, (num_anchors, 2))
    anchors = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1)
    anchors = np.broadcast_to(anchors, (batch, num_anchors, 4)).astype(np.float32)
    return [probs, deltas, anchors]


def test_layer_contract():
    # 150 anchors, pre_nms_limit 100: not multiples of the NMS tile.
    inputs = rpn_inputs(np.random.default_rng(0), 2, 150)
    kwargs = dict(proposal_count=30, nms_threshold=0.7, pre_nms_limit=100,
                  rpn_bbox_std_dev=STD)
    proposals = run_layer_test(ProposalLayer, kwargs, inputs)
    assert proposals.shape == (2, 30, 4)
    assert (proposals >= 0).all() and (proposals <= 1).all()


def test_zero_padding_pre_nms_limit_above_anchor_count_and_tie_order():
    # Three identical anchors and one apart; equal scores everywhere.
    anchors = np.array([[[0.1, 0.1, 0.3, 0.3]] * 3 + [[0.6, 0.6, 0.9, 0.8]]], np.float32)
    probs = np.full((1, 4, 2), 0.5, np.float32)
    deltas = np.zeros((1, 4, 4), np.float32)
    deltas[0, 3] = [1.0, 0.0, 0.0, 0.0]  # shift by dy * std * height = 0.1 * 0.3
    layer = ProposalLayer(proposal_count=5, nms_threshold=0.7, pre_nms_limit=6000,
                          rpn_bbox_std_dev=STD)
    proposals = jit_call(lambda *x: layer(list(x)), probs, deltas, anchors)[0]
    # Lower anchor index first among equal scores: anchor 0 survives, 1 and 2
    # are its duplicates, anchor 3 (moved down by 0.03) comes second.
    np.testing.assert_allclose(proposals[0], [0.1, 0.1, 0.3, 0.3], atol=1e-6)
    np.testing.assert_allclose(proposals[1], [0.63, 0.6, 0.93, 0.8], atol=1e-6)
    np.testing.assert_array_equal(proposals[2:], 0.0)


def test_keeps_the_best_scores_before_nms():
    rng = np.random.default_rng(1)
    probs, deltas, anchors = rpn_inputs(rng, 1, 50)
    layer = ProposalLayer(proposal_count=50, nms_threshold=1.0, pre_nms_limit=5,
                          rpn_bbox_std_dev=STD)
    proposals = jit_call(lambda *x: layer(list(x)), probs, np.zeros_like(deltas), anchors)
    # IoU never exceeds 1: NMS keeps all 5 pre-NMS boxes, best score first.
    best = np.argsort(-probs[0, :, 1], kind="stable")[:5]
    np.testing.assert_allclose(proposals[0, :5], np.clip(anchors[0, best], 0, 1), atol=1e-6)
    np.testing.assert_array_equal(proposals[0, 5:], 0.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(proposal_count=0, nms_threshold=0.7, pre_nms_limit=10, rpn_bbox_std_dev=STD),
     "proposal_count"),
    (dict(proposal_count=5, nms_threshold=0.7, pre_nms_limit=10, rpn_bbox_std_dev=[1, 2]),
     "rpn_bbox_std_dev"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProposalLayer(**kwargs)


@pytest.mark.shared_data
def test_reproduces_matterport_rpn_rois(reference_dir):
    # Tolerance: 1e-6 absolute on normalized coordinates (TF is bit-exact; an
    # XLA FMA moves the last float32 bit on JAX). Row order must match
    # exactly, including the 7-9 equal top scores per image.
    case = np.load(reference_dir / "detect_cases.npz")
    anchors = np.broadcast_to(case["anchors"], (3,) + case["anchors"].shape)
    layer = ProposalLayer(proposal_count=1000, nms_threshold=0.7, pre_nms_limit=6000,
                          rpn_bbox_std_dev=STD)
    proposals = jit_call(lambda *x: layer(list(x)),
                         case["raw.rpn_class"], case["raw.rpn_bbox"], anchors)
    np.testing.assert_allclose(proposals, case["raw.rpn_rois"], rtol=0, atol=1e-6)


def test_gradients_flow_to_deltas_through_the_picks():
    # As in matterport, proposals are differentiable in the deltas (the picks
    # themselves are not); this must also hold through the compiled NMS loop.
    probs, deltas, anchors = rpn_inputs(np.random.default_rng(2), 1, 60)
    layer = ProposalLayer(proposal_count=10, nms_threshold=0.7, pre_nms_limit=40,
                          rpn_bbox_std_dev=STD)
    grad_probs, grad_deltas, grad_anchors = jit_gradients(
        lambda *x: layer(list(x)), probs, deltas, anchors)
    np.testing.assert_array_equal(grad_probs, 0.0)
    assert np.isfinite(grad_deltas).all()
    assert 1 <= (np.abs(grad_deltas).sum(-1) > 0).sum() <= 10
    assert (np.abs(grad_anchors).sum(-1) > 0).sum() <= 10
