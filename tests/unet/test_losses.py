import math

import numpy as np
import pytest
from keras import ops

from unet import losses

pytestmark = pytest.mark.backend_agnostic


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _batch(*masks):
    return np.stack([np.asarray(m, np.float32)[..., None] for m in masks])


LEFT = np.zeros((4, 4)); LEFT[:, :2] = 1   # 8 pixels
TOP = np.zeros((4, 4)); TOP[:2, :] = 1     # 8 pixels, 4 shared with LEFT


def test_empty_masks_predicted_empty_cost_nothing():
    t = p = _batch(np.zeros((4, 4)))
    assert _np(losses.dice_coefficient(t, p)) == pytest.approx([1.0])
    assert _np(losses.dice_loss(t, p)) == pytest.approx([0.0], abs=1e-6)
    assert _np(losses.bce_logdice_loss(t, p)) == pytest.approx([0.0], abs=1e-5)
    assert _np(losses.bce_dice(t, p)) == pytest.approx([0.0], abs=1e-5)


def test_all_ones_predicted_all_ones_cost_nothing():
    t = p = _batch(np.ones((4, 4)))
    assert _np(losses.dice_coefficient(t, p)) == pytest.approx([1.0])
    assert _np(losses.bce_logdice_loss(t, p)) == pytest.approx([0.0], abs=1e-5)


def test_half_overlap_binary_prediction():
    t, p = _batch(LEFT), _batch(TOP)
    # (2 * 4 + 1) / (8 + 8 + 1)
    assert _np(losses.dice_coefficient(t, p)) == pytest.approx([9 / 17], rel=1e-6)
    assert _np(losses.dice_loss(t, p)) == pytest.approx([8 / 17], rel=1e-6)


def test_constant_half_probability_against_hand_computed_values():
    t, p = _batch(LEFT), np.full((1, 4, 4, 1), 0.5, np.float32)
    dice = (2 * 0.5 * 8 + 1) / (8 + 16 * 0.5 + 1)
    assert _np(losses.binary_crossentropy(t, p)) == pytest.approx([math.log(2)], rel=1e-6)
    assert _np(losses.bce_dice(t, p)) == pytest.approx([math.log(2) + 1 - dice], rel=1e-6)
    assert _np(losses.bce_logdice_loss(t, p)) == pytest.approx(
        [math.log(2) - math.log(dice)], rel=1e-6)


def test_losses_are_per_image():
    t = _batch(LEFT, np.zeros((4, 4)))
    p = _batch(LEFT, np.ones((4, 4)))
    out = _np(losses.dice_loss(t, p))
    assert out.shape == (2,)
    assert out[0] == pytest.approx(0.0, abs=1e-6)
    assert out[1] == pytest.approx(1 - 1 / 17, rel=1e-6)  # (0 + 1) / (0 + 16 + 1)


def test_logdice_grows_without_bound_where_dice_loss_saturates():
    t = _batch(LEFT)
    far = _batch(1 - LEFT) * 0.999
    farther = _batch(1 - LEFT) * 0.999999
    assert _np(losses.dice_loss(t, farther))[0] < 1.0
    assert (_np(losses.bce_logdice_loss(t, farther))[0]
            > _np(losses.bce_logdice_loss(t, far))[0] > 2.0)
