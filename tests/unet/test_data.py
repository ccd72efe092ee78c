import albumentations as A
import cv2
import numpy as np
import pytest

from unet.data import (BinaryMaskSequence, mask_coverage, resize_image, resize_mask,
                       to_model_input)

pytestmark = pytest.mark.backend_agnostic


def test_resize_image_averages_when_shrinking():
    image = np.zeros((4, 4, 3), np.uint8)
    image[::2, ::2] = 255  # a checkerboard that nearest-neighbour would alias
    small = resize_image(image, (2, 2))
    assert small.shape == (2, 2, 3)
    assert np.abs(small.astype(int) - 64).max() <= 1
    assert resize_image(image[..., :1], (8, 6)).shape == (8, 6, 1)


def test_resize_mask_stays_binary_and_keeps_shape():
    mask = np.zeros((50, 40), bool)
    mask[10:30, 5:25] = True
    out = resize_mask(mask, (100, 80))
    assert out.dtype == bool and out.shape == (100, 80)
    assert out.sum() == 4 * mask.sum()


def _centroid(weights: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(weights.shape)
    return np.array([(ys * weights).sum(), (xs * weights).sum()]) / weights.sum()


def _lungs_like(shape=(397, 500)) -> np.ndarray:
    """Two ellipses with off-grid centres, [H, W] bool."""
    yy, xx = np.indices(shape)
    left = ((yy - 200.3) / 150) ** 2 + ((xx - 140.6) / 80) ** 2 <= 1
    right = ((yy - 190.7) / 140) ** 2 + ((xx - 350.2) / 85) ** 2 <= 1
    return left | right


@pytest.mark.parametrize("size", [(320, 384), (96, 128), (512, 640)])
def test_resized_masks_stay_on_their_images(size):
    # The same shape drawn as an image and as a mask must land in the same place;
    # cv2's plain INTER_NEAREST moves it up to a source pixel up-left.
    mask = _lungs_like()
    expected = _centroid(resize_image(mask.astype(np.uint8) * 255, size).astype(np.float64))
    assert np.abs(_centroid(resize_mask(mask, size)) - expected).max() < 0.1
    assert np.abs(_centroid(mask_coverage(mask, size)) - expected).max() < 1e-3


def test_mask_coverage_is_the_covered_fraction_of_each_pixel():
    mask = np.zeros((8, 8), bool)
    mask[2:5, 1:8] = True  # output row 1 fully covered, row 2 half, column 0 half
    cover = mask_coverage(mask, (4, 4))
    assert cover.dtype == np.float32 and cover.shape == (4, 4)
    np.testing.assert_allclose(cover[:, 0], [0.0, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(cover[1], [0.5, 1.0, 1.0, 1.0])
    assert cover.sum() * 4 == mask.sum()


def test_soft_targets_put_borders_back_where_they_were():
    # Shrink by a non-integer factor, resize back bilinearly and threshold at 0.5:
    # coverage targets recover the mask almost exactly, binary ones lose its borders.
    mask = _lungs_like()

    def round_trip(target):
        back = cv2.resize(target.astype(np.float32), (500, 397),
                          interpolation=cv2.INTER_LINEAR) >= 0.5
        return (back & mask).sum() / (back | mask).sum()

    soft, hard = round_trip(mask_coverage(mask, (96, 128))), round_trip(resize_mask(mask, (96, 128)))
    assert soft > 0.995 and soft > hard + 0.01


def test_to_model_input_channels_and_range():
    rgb = np.full((3, 5, 3), 255, np.uint8)
    assert to_model_input(rgb).shape == (3, 5, 3)
    assert to_model_input(rgb, 1).shape == (3, 5, 1)
    assert to_model_input(rgb[..., 0], 3).max() == 1.0
    with pytest.raises(ValueError, match="uint8"):
        to_model_input(rgb.astype(np.float32))


def test_batches_shapes_values_and_last_partial_batch(lung_samples):
    samples = lung_samples(5, (50, 70))
    seq = BinaryMaskSequence(samples, (32, 64), batch_size=2, channels=1, shuffle=False)
    assert len(seq) == 3
    x, y = seq[0]
    assert x.shape == (2, 32, 64, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.shape == (2, 32, 64, 1) and y.dtype == np.float32
    # Area targets: soft on the borders, and the covered area is kept.
    assert 0.0 <= y.min() and y.max() <= 1.0 and ((y > 0) & (y < 1)).any()
    original = np.stack([s.load_mask() for s in samples[:2]]).sum()
    assert y.sum() * (50 * 70) / (32 * 64) == pytest.approx(original, rel=0.01)
    binary = BinaryMaskSequence(samples, (32, 64), batch_size=2, channels=1,
                                shuffle=False, mask_resize="nearest")
    assert set(np.unique(binary[0][1])) == {0.0, 1.0}
    with pytest.raises(ValueError, match="mask_resize"):
        BinaryMaskSequence(samples, (32, 64), mask_resize="linear")
    assert seq[2][0].shape[0] == 1
    with pytest.raises(IndexError):
        seq[3]


def test_shuffling_per_epoch_is_seeded(lung_samples):
    samples = lung_samples(8, (32, 32))

    def epoch_orders(seed):
        seq = BinaryMaskSequence(samples, (32, 32), batch_size=8, seed=seed)
        orders = []
        for _ in range(3):
            orders.append([tuple(m.ravel()) for m in seq[0][1]])
            seq.on_epoch_end()
        return orders

    first = epoch_orders(0)
    assert first == epoch_orders(0)
    assert first[0] != first[1] and sorted(first[0]) == sorted(first[1])
    assert first != epoch_orders(1)


def test_augmentation_moves_masks_with_images(lung_samples):
    samples = lung_samples(2, (32, 32))
    plain = BinaryMaskSequence(samples, (32, 32), shuffle=False)
    flipped = BinaryMaskSequence(samples, (32, 32), shuffle=False,
                                 augmentation=A.Compose([A.HorizontalFlip(p=1.0)]))
    (x0, y0), (x1, y1) = plain[0], flipped[0]
    np.testing.assert_array_equal(x1, x0[:, :, ::-1])
    np.testing.assert_array_equal(y1, y0[:, :, ::-1])


def test_augmentation_that_changes_size_is_an_error(lung_samples):
    seq = BinaryMaskSequence(lung_samples(1, (32, 32)), (32, 32),
                             augmentation=A.Compose([A.CenterCrop(16, 16)]))
    with pytest.raises(ValueError, match="changed the size of sample lung000"):
        seq[0]


def test_image_mask_size_mismatch_names_the_sample(lung_samples):
    sample = lung_samples(1, (32, 32))[0]
    sample.mask = sample.mask[:16]
    with pytest.raises(ValueError, match="lung000"):
        BinaryMaskSequence([sample], (32, 32))[0]
