"""mrcnn/losses.py against hand-computed values and a numpy reference that gathers rows
the way matterport's graph does (boolean indexing, then a plain mean)."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops

from mrcnn import losses

pytestmark = pytest.mark.backend_agnostic


# --- numpy reference: matterport's gather-then-mean, written independently ----------

def np_smooth_l1(y_true, y_pred):
    d = np.abs(y_true - y_pred)
    return np.where(d < 1, 0.5 * d * d, d - 0.5)


def np_softmax_ce(labels, logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]


def np_mean_or_zero(values):
    return float(np.mean(values)) if values.size else 0.0


def np_rpn_class_loss(rpn_match, logits):
    match = rpn_match[..., 0]
    keep = match != 0
    return np_mean_or_zero(np_softmax_ce((match[keep] == 1).astype(int), logits[keep]))


def np_rpn_bbox_loss(target_bbox, rpn_match, rpn_bbox):
    match = rpn_match[..., 0]
    pred = rpn_bbox[match == 1]
    target = np.concatenate([target_bbox[b, :np.sum(match[b] == 1)]
                             for b in range(match.shape[0])])
    return np_mean_or_zero(np_smooth_l1(target, pred))


def np_mrcnn_class_loss(target_ids, logits, active):
    pred_ids = logits.argmax(axis=-1)
    weight = np.take_along_axis(active, pred_ids, axis=1)
    loss = np_softmax_ce(target_ids, logits) * weight
    return float(loss.sum() / weight.sum()) if weight.sum() else 0.0


def np_mrcnn_bbox_loss(target_bbox, target_ids, pred_bbox):
    b, r = np.nonzero(target_ids > 0)
    return np_mean_or_zero(np_smooth_l1(target_bbox[b, r], pred_bbox[b, r, target_ids[b, r]]))


def np_mrcnn_mask_loss(target_masks, target_ids, pred_masks):
    b, r = np.nonzero(target_ids > 0)
    p = np.clip(pred_masks[b, r, :, :, target_ids[b, r]], 1e-7, 1 - 1e-7)
    t = target_masks[b, r]
    return np_mean_or_zero(-(t * np.log(p) + (1 - t) * np.log(1 - p)))


# --- random inputs in matterport's layout ----------------------------------------

def rpn_inputs(rng, batch=2, anchors=40, rows=8, positives=(3, 5)):
    rpn_match = np.zeros((batch, anchors, 1), np.int32)
    target = np.zeros((batch, rows, 4), np.float32)
    for b, n_pos in enumerate(positives):
        ix = rng.choice(anchors, n_pos + 6, replace=False)
        rpn_match[b, ix[:n_pos], 0] = 1
        rpn_match[b, ix[n_pos:], 0] = -1
        target[b, :n_pos] = rng.normal(0, 1.5, (n_pos, 4))
    logits = rng.normal(0, 2, (batch, anchors, 2)).astype(np.float32)
    rpn_bbox = rng.normal(0, 1.5, (batch, anchors, 4)).astype(np.float32)
    return rpn_match, logits, target, rpn_bbox


def head_inputs(rng, batch=2, rois=12, classes=4, mask=6, n_pos=(4, 2)):
    target_ids = np.zeros((batch, rois), np.int32)
    for b, n in enumerate(n_pos):
        target_ids[b, :n] = rng.integers(1, classes, n)
    logits = rng.normal(0, 2, (batch, rois, classes)).astype(np.float32)
    active = np.ones((batch, classes), np.float32)
    active[1, 2] = 0
    target_bbox = (rng.normal(0, 1.5, (batch, rois, 4)) * (target_ids > 0)[..., None]
                   ).astype(np.float32)
    pred_bbox = rng.normal(0, 1.5, (batch, rois, classes, 4)).astype(np.float32)
    target_masks = (rng.random((batch, rois, mask, mask)) > 0.5).astype(np.float32)
    pred_masks = rng.random((batch, rois, mask, mask, classes)).astype(np.float32)
    return target_ids, logits, active, target_bbox, pred_bbox, target_masks, pred_masks


def value(x) -> float:
    return float(ops.convert_to_numpy(x))


# --- hand-computed values ------------------------------------------------------------

def test_smooth_l1_hand_values():
    got = ops.convert_to_numpy(losses.smooth_l1(np.zeros(5), np.array([0.5, -0.5, 1.0, 2.0, -3.0])))
    np.testing.assert_allclose(got, [0.125, 0.125, 0.5, 1.5, 2.5], rtol=1e-6)


def test_rpn_class_loss_hand_value_ignores_neutral():
    rpn_match = np.array([[[1], [-1], [0]]], np.int32)
    # FG prob 3/4 for the positive, 1/2 for the negative; the neutral anchor's huge
    # logits would dominate if it were counted.
    logits = np.array([[[0.0, math.log(3.0)], [0.0, 0.0], [50.0, -50.0]]], np.float32)
    expected = (-math.log(0.75) + math.log(2.0)) / 2
    assert value(losses.rpn_class_loss(rpn_match, logits)) == pytest.approx(expected, rel=1e-5)


def test_rpn_bbox_loss_pairs_positives_with_target_rows_in_anchor_order():
    rpn_match = np.array([[[0], [1], [-1], [1]]], np.int32)
    rpn_bbox = np.zeros((1, 4, 4), np.float32)
    rpn_bbox[0, 1] = [0.5, 0, 0, 0]   # paired with target row 0
    rpn_bbox[0, 3] = [0, 0, 0, 3.0]   # paired with target row 1
    target = np.zeros((1, 3, 4), np.float32)
    target[0, 2] = 100.0              # padding row: never paired
    expected = (0.125 + 2.5) / 8       # 2 positives x 4 coordinates
    got = value(losses.rpn_bbox_loss(target, rpn_match, rpn_bbox, images_per_gpu=1))
    assert got == pytest.approx(expected, rel=1e-6)


def test_mrcnn_class_loss_counts_rows_by_predicted_class_activity():
    target = np.array([[1, 0]], np.int32)
    # Row 0 is predicted as class 2, which is inactive: it does not count.
    logits = np.array([[[0.0, 0.0, 5.0], [0.0, 0.0, -1.0]]], np.float32)
    active = np.array([[1, 1, 0]], np.float32)
    p_bg = 1.0 / (2.0 + math.exp(-1.0))
    got = value(losses.mrcnn_class_loss(target, logits, active))
    assert got == pytest.approx(-math.log(p_bg), rel=1e-5)


def test_mrcnn_bbox_loss_uses_the_target_class_deltas():
    target_ids = np.array([[2, 0]], np.int32)
    target = np.array([[[1.0, 0, 0, 0], [9, 9, 9, 9]]], np.float32)
    pred = np.zeros((1, 2, 3, 4), np.float32)
    pred[0, 0, 1] = 50.0              # another class: ignored
    pred[0, 0, 2] = [0.0, 0, 0, 0.5]
    expected = (0.5 + 0.125) / 4
    assert value(losses.mrcnn_bbox_loss(target, target_ids, pred)) == pytest.approx(expected)


def test_mrcnn_mask_loss_hand_value():
    target_ids = np.array([[1, 0]], np.int32)
    target = np.array([[[[1.0, 0.0]], [[1.0, 1.0]]]], np.float32)   # [1, 2, 1, 2]
    pred = np.full((1, 2, 1, 2, 2), 0.5, np.float32)
    pred[0, 0, 0, :, 1] = [0.8, 0.1]
    expected = (-math.log(0.8) - math.log(0.9)) / 2
    assert value(losses.mrcnn_mask_loss(target, target_ids, pred)) == pytest.approx(
        expected, rel=1e-5)


# --- zero-row cases --------------------------------------------------------------------

def test_losses_are_zero_when_no_row_counts():
    rng = np.random.default_rng(0)
    rpn_match, logits, target, rpn_bbox = rpn_inputs(rng)
    ids, class_logits, active, tbox, pbox, tmask, pmask = head_inputs(rng)
    all_neutral = np.zeros_like(rpn_match)
    no_positive = np.where(rpn_match == 1, -1, rpn_match)
    background = np.zeros_like(ids)
    inactive = np.zeros_like(active)
    assert value(losses.rpn_class_loss(all_neutral, logits)) == 0.0
    assert value(losses.rpn_bbox_loss(target, no_positive, rpn_bbox, 2)) == 0.0
    assert value(losses.mrcnn_class_loss(ids, class_logits, inactive)) == 0.0
    assert value(losses.mrcnn_bbox_loss(tbox, background, pbox)) == 0.0
    assert value(losses.mrcnn_mask_loss(tmask, background, pmask)) == 0.0


# --- agreement with the numpy reference -----------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_match_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    rpn_match, logits, target, rpn_bbox = rpn_inputs(rng, positives=(rng.integers(0, 8), 5))
    ids, class_logits, active, tbox, pbox, tmask, pmask = head_inputs(rng)
    checks = [
        (losses.rpn_class_loss(rpn_match, logits), np_rpn_class_loss(rpn_match, logits)),
        (losses.rpn_bbox_loss(target, rpn_match, rpn_bbox, 2),
         np_rpn_bbox_loss(target, rpn_match, rpn_bbox)),
        (losses.mrcnn_class_loss(ids, class_logits, active),
         np_mrcnn_class_loss(ids, class_logits, active)),
        (losses.mrcnn_bbox_loss(tbox, ids, pbox), np_mrcnn_bbox_loss(tbox, ids, pbox)),
        (losses.mrcnn_mask_loss(tmask, ids, pmask), np_mrcnn_mask_loss(tmask, ids, pmask)),
    ]
    for got, expected in checks:
        assert expected > 0
        assert value(got) == pytest.approx(expected, rel=1e-5)


def test_rpn_match_may_be_given_without_trailing_axis():
    rng = np.random.default_rng(3)
    rpn_match, logits, target, rpn_bbox = rpn_inputs(rng)
    assert value(losses.rpn_class_loss(rpn_match[..., 0], logits)) == pytest.approx(
        np_rpn_class_loss(rpn_match, logits), rel=1e-5)
    assert value(losses.rpn_bbox_loss(target, rpn_match[..., 0], rpn_bbox, 2)) == pytest.approx(
        np_rpn_bbox_loss(target, rpn_match, rpn_bbox), rel=1e-5)


def test_rpn_bbox_loss_rejects_a_batch_other_than_images_per_gpu():
    rng = np.random.default_rng(4)
    rpn_match, _, target, rpn_bbox = rpn_inputs(rng)
    with pytest.raises(ValueError, match="images_per_gpu is 3"):
        losses.rpn_bbox_loss(target, rpn_match, rpn_bbox, images_per_gpu=3)


# --- compiled and differentiated -------------------------------------------------------

def _all_losses(rpn_match, logits, target, rpn_bbox, ids, class_logits, active, tbox, pbox,
                tmask, pmask):
    return ops.stack([
        losses.rpn_class_loss(rpn_match, logits),
        losses.rpn_bbox_loss(target, rpn_match, rpn_bbox, 2),
        losses.mrcnn_class_loss(ids, class_logits, active),
        losses.mrcnn_bbox_loss(tbox, ids, pbox),
        losses.mrcnn_mask_loss(tmask, ids, pmask),
    ])


def _compile(fn):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        return tf.function(fn, jit_compile=True)
    if backend == "jax":
        import jax
        return jax.jit(fn)
    pytest.skip(f"no compiler wired for backend {backend}")


def _grads(fn, args, wrt):
    """Gradients of sum(fn(*args)) with respect to the positions in `wrt`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        tensors = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            for i in wrt:
                tape.watch(tensors[i])
            total = tf.reduce_sum(fn(*tensors))
        return [g.numpy() for g in tape.gradient(total, [tensors[i] for i in wrt])]
    if backend == "jax":
        import jax
        grads = jax.grad(lambda *a: fn(*a).sum(), argnums=tuple(wrt))(*args)
        return [np.asarray(g) for g in grads]
    pytest.skip(f"no gradient helper for backend {backend}")


def test_losses_compile_and_match_eager():
    rng = np.random.default_rng(5)
    args = (*rpn_inputs(rng), *head_inputs(rng))
    eager = ops.convert_to_numpy(_all_losses(*args))
    compiled = ops.convert_to_numpy(_compile(_all_losses)(*args))
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)


def test_gradients_are_finite_with_and_without_rows():
    rng = np.random.default_rng(6)
    rpn_match, logits, target, rpn_bbox = rpn_inputs(rng)
    ids, class_logits, active, tbox, pbox, tmask, pmask = head_inputs(rng)
    float_inputs = [1, 3, 5, 8, 10]   # logits, rpn_bbox, class logits, pred_bbox, pred_masks
    for rpn_match_case, ids_case in [(rpn_match, ids),
                                     (np.zeros_like(rpn_match), np.zeros_like(ids))]:
        args = [rpn_match_case, logits, target, rpn_bbox, ids_case, class_logits, active,
                tbox, pbox, tmask, pmask]
        for grad in _grads(_all_losses, args, float_inputs):
            assert np.all(np.isfinite(grad))
    # With rows, the positive ROI's target-class deltas get a gradient; other classes none.
    grad_pbox = _grads(_all_losses, [rpn_match, logits, target, rpn_bbox, ids, class_logits,
                                     active, tbox, pbox, tmask, pmask], [8])[0].copy()
    b, r = np.nonzero(ids > 0)
    assert np.all(np.abs(grad_pbox[b, r, ids[b, r]]).sum(axis=-1) > 0)
    grad_pbox[b, r, ids[b, r]] = 0
    assert not grad_pbox.any()


# --- weighting and weight decay -----------------------------------------------------

def test_weighted_total_uses_loss_weights_with_default_one():
    parts = {"rpn_class_loss": ops.convert_to_tensor(2.0),
             "mrcnn_mask_loss": ops.convert_to_tensor(3.0)}
    assert value(losses.weighted_total(parts, {"rpn_class_loss": 0.5})) == pytest.approx(4.0)


def test_weight_decay_skips_batchnorm_gamma_and_beta():
    dense = keras.layers.Dense(3)
    dense.build((None, 2))
    bn = keras.layers.BatchNormalization()
    bn.build((None, 3))
    rng = np.random.default_rng(7)
    kernel = rng.normal(size=(2, 3)).astype(np.float32)
    bias = rng.normal(size=(3,)).astype(np.float32)
    dense.set_weights([kernel, bias])
    bn.gamma.assign(np.full(3, 5.0, np.float32))
    bn.beta.assign(np.full(3, 5.0, np.float32))
    got = value(losses.weight_decay_loss(dense.trainable_weights + bn.trainable_weights, 1e-4))
    expected = 1e-4 * ((kernel ** 2).sum() / 6 + (bias ** 2).sum() / 3)
    assert got == pytest.approx(expected, rel=1e-5)
    assert value(losses.weight_decay_loss(bn.trainable_weights, 1e-4)) == 0.0
