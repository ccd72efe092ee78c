import numpy as np
import pytest
from keras import ops

from unet import evaluation, metrics

pytestmark = pytest.mark.backend_agnostic


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _batch(*masks):
    return np.stack([np.asarray(m, np.float32)[..., None] for m in masks])


EMPTY = np.zeros((4, 4))
FULL = np.ones((4, 4))
LEFT = np.zeros((4, 4)); LEFT[:, :2] = 1
TOP = np.zeros((4, 4)); TOP[:2, :] = 1


@pytest.mark.parametrize("metric", [metrics.mean_iou, metrics.siim_dice, metrics.isic_jaccard])
def test_empty_empty_scores_one_and_empty_vs_full_zero(metric):
    out = _np(metric(_batch(EMPTY, EMPTY), _batch(EMPTY, FULL)))
    assert out.tolist() == pytest.approx([1.0, 0.0])


def test_half_overlap():
    t, p = _batch(LEFT), _batch(TOP)
    assert _np(metrics.mean_iou(t, p)) == pytest.approx([4 / 12])
    assert _np(metrics.siim_dice(t, p)) == pytest.approx([8 / 16])
    assert _np(metrics.isic_jaccard(t, p)) == pytest.approx([0.0])  # 1/3 < 0.65
    assert _np(metrics.dice(t, p)) == pytest.approx([9 / 17])  # soft, smooth 1


def test_isic_jaccard_keeps_scores_at_or_above_065():
    t = np.zeros((1, 10, 10, 1), np.float32); t[0, :, :7] = 1      # 70 px
    p = np.zeros((1, 10, 10, 1), np.float32); p[0, :, :5] = 1      # 50 px inside t
    assert _np(metrics.isic_jaccard(t, p)) == pytest.approx([50 / 70])
    p[0, :, :4] = 1; p[0, :, 4:] = 0                                   # 40 / 70 < 0.65
    assert _np(metrics.isic_jaccard(t, p)) == pytest.approx([0.0])


def test_prediction_is_thresholded_at_half():
    t = _batch(LEFT)
    assert _np(metrics.mean_iou(t, t * 0.5)) == pytest.approx([1.0])
    assert _np(metrics.mean_iou(t, t * 0.49)) == pytest.approx([0.0])


def test_keras_metrics_match_numpy_evaluation():
    rng = np.random.default_rng(0)
    gt = rng.random((5, 16, 16)) < 0.4
    gt[0] = False
    prob = np.clip(gt + rng.normal(0, 0.45, gt.shape), 0, 1).astype(np.float32)
    prob[1] = 0.0
    t, p = gt[..., None].astype(np.float32), prob[..., None]
    for keras_metric, numpy_metric in [(metrics.mean_iou, evaluation.iou),
                                       (metrics.siim_dice, evaluation.dice),
                                       (metrics.isic_jaccard, evaluation.isic_jaccard)]:
        expected = [numpy_metric(g, q >= 0.5) for g, q in zip(gt, prob)]
        assert _np(keras_metric(t, p)) == pytest.approx(expected, rel=1e-6)
