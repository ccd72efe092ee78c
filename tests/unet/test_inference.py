import cv2
import numpy as np
import pytest

from unet.inference import (keep_largest_components, overlay, predict_masks,
                            predict_probabilities, write_png)
from unet.model import UNet


@pytest.mark.backend_agnostic
def test_predictions_come_back_at_each_original_size():
    model = UNet(base_filters=4).get_model((32, 64, 1))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (50, 70, 3), dtype=np.uint8),
              rng.integers(0, 256, (33, 45), dtype=np.uint8),
              rng.integers(0, 256, (128, 20, 3), dtype=np.uint8)]
    probs = predict_probabilities(model, images, batch_size=2)
    masks = predict_masks(model, images, threshold=0.5, batch_size=2)
    assert [p.shape for p in probs] == [(50, 70), (33, 45), (128, 20)]
    assert [m.shape for m in masks] == [(50, 70), (33, 45), (128, 20)]
    for p, m in zip(probs, masks):
        assert m.dtype == bool
        np.testing.assert_array_equal(m, p >= 0.5)
    with pytest.raises(ValueError, match="threshold"):
        predict_masks(model, images, threshold=1.0)


def test_overlay_tints_prediction_and_outlines_truth():
    image = np.full((20, 20), 100, np.uint8)
    pred = np.zeros((20, 20), bool); pred[:10] = True
    gt = np.zeros((20, 20), bool); gt[5:15, 5:15] = True
    out = overlay(image, pred, gt)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert tuple(out[2, 2]) == (162, 60, 60)      # 0.6 * 100 + 0.4 * red
    assert tuple(out[18, 18]) == (100, 100, 100)  # untouched
    assert tuple(out[5, 10]) == (0, 255, 0)       # on the truth's border
    assert tuple(out[10, 10]) == (100, 100, 100)  # inside the truth, not predicted
    with pytest.raises(ValueError, match="differ in size"):
        overlay(image, pred[:5])


def test_write_png_keeps_rgb_order_and_mask_levels(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8); rgb[..., 0] = 200
    mask = np.eye(4, dtype=bool)
    back = cv2.imread(str(write_png(tmp_path / "a" / "rgb.png", rgb)))[..., ::-1]
    np.testing.assert_array_equal(back, rgb)
    back = cv2.imread(str(write_png(tmp_path / "m.png", mask)), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, mask.astype(np.uint8) * 255)


def test_keep_largest_components():
    mask = np.zeros((20, 30), bool)
    mask[2:12, 2:10] = True      # 80 pixels
    mask[2:8, 20:28] = True      # 48
    mask[15:17, 15:17] = True    # 4, a speck
    mask[18, 0] = mask[19, 1] = True  # 2, joined diagonally (8-connectivity)
    two = keep_largest_components(mask, 2)
    assert two.sum() == 128 and two[2:12, 2:10].all() and two[2:8, 20:28].all()
    assert keep_largest_components(mask, 3).sum() == 132
    np.testing.assert_array_equal(keep_largest_components(mask, 4), mask)
    np.testing.assert_array_equal(keep_largest_components(mask, 9), mask)
    assert not keep_largest_components(np.zeros((4, 4), bool), 2).any()
    with pytest.raises(ValueError, match="count must be >= 1"):
        keep_largest_components(mask, 0)
