"""Training batches: layout, seeded determinism across workers, empty and corrupt samples."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import albumentations as A
import numpy as np
import pytest

from mrcnn.pipeline import INPUT_NAMES, MaskRCNNSequence, data_generator, pixel_anchors
from tests.mrcnn.tiny_training import EllipseDataset, TinyConfig

pytestmark = [pytest.mark.backend_agnostic]

CONFIG = TinyConfig()


def _augmentation():
    return A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5),
                      A.RandomBrightnessContrast(p=0.5)])


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_batch_layout_and_padding():
    dataset = EllipseDataset(4, seed=3)
    (batch,) = MaskRCNNSequence(dataset, CONFIG, shuffle=False, seed=0)[0]
    assert list(batch) == list(INPUT_NAMES)
    num_anchors = len(pixel_anchors(CONFIG))
    assert batch["input_image"].shape == (2, 64, 64, 3)
    assert batch["input_rpn_match"].shape == (2, num_anchors, 1)
    assert batch["input_rpn_bbox"].shape == (2, CONFIG.RPN_TRAIN_ANCHORS_PER_IMAGE, 4)
    assert batch["input_gt_masks"].shape == (2, 16, 16, CONFIG.MAX_GT_INSTANCES)
    assert batch["input_gt_masks"].dtype == np.uint8
    for row in range(2):
        masks = dataset.load_mask(row)[0]
        count = masks.shape[2]
        ids = batch["input_gt_class_ids"][row]
        assert ids[:count].tolist() == [1] * count and not ids[count:].any()
        boxes = batch["input_gt_boxes"][row]
        assert not boxes[count:].any() and not batch["input_gt_masks"][row, ..., count:].any()
        # The first gt box is the tight box of the first ellipse (no resizing at 64 px).
        ys, xs = np.nonzero(masks[:, :, 0])
        assert boxes[0].tolist() == [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
        match = batch["input_rpn_match"][row, :, 0]
        assert (match == 1).sum() >= 1
        assert ((match != 0).sum() == CONFIG.RPN_TRAIN_ANCHORS_PER_IMAGE)
    # Molded: mean pixel subtracted.
    image = dataset.load_image(0).astype(np.float32) - np.asarray(CONFIG.MEAN_PIXEL)
    np.testing.assert_allclose(batch["input_image"][0], image)


def test_seeded_batches_do_not_depend_on_workers_or_order():
    dataset = EllipseDataset(6, seed=1)

    def sequence(seed):
        return MaskRCNNSequence(dataset, CONFIG, augmentation=_augmentation(), seed=seed,
                                steps_per_epoch=3)

    reference = [sequence(7)[i][0] for i in range(3)]
    reversed_order = sequence(7)
    assert all(_equal(reversed_order[i][0], reference[i]) for i in (2, 1, 0))
    threaded = sequence(7)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: threaded[i][0], [0, 1, 2, 0, 1, 2]))
    assert all(_equal(results[i], reference[i % 3]) for i in range(6))
    other = sequence(8)
    assert not all(_equal(other[i][0], reference[i]) for i in range(3))


def test_epochs_differ_and_resume_at_initial_epoch():
    dataset = EllipseDataset(6, seed=1)
    sequence = MaskRCNNSequence(dataset, CONFIG, seed=5, steps_per_epoch=2)
    first = sequence[0][0]
    sequence.on_epoch_end()
    second = sequence[0][0]
    resumed = MaskRCNNSequence(dataset, CONFIG, seed=5, steps_per_epoch=2, initial_epoch=1)
    assert _equal(resumed[0][0], second)
    # 6 images, 4 per epoch: epoch 1 starts in the second pass, in another order.
    order_0 = [sequence.image_id_at(p) for p in range(6)]
    order_1 = [sequence.image_id_at(p) for p in range(6, 12)]
    assert sorted(order_0) == sorted(order_1) == list(range(6))
    assert not _equal(first, second)


def test_no_augmentation_sources_are_left_alone():
    dataset = EllipseDataset(2, seed=2)
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    plain = MaskRCNNSequence(dataset, CONFIG, shuffle=False, seed=0)[0][0]
    flipped = MaskRCNNSequence(dataset, CONFIG, shuffle=False, seed=0, augmentation=flip)[0][0]
    kept = MaskRCNNSequence(dataset, CONFIG, shuffle=False, seed=0, augmentation=flip,
                            no_augmentation_sources=["shapes"])[0][0]
    np.testing.assert_array_equal(flipped["input_image"], plain["input_image"][:, :, ::-1])
    assert _equal(kept, plain)


def test_image_without_instances_is_negative_only():
    dataset = EllipseDataset(2, seed=0, empty=(1,))
    (batch,) = MaskRCNNSequence(dataset, CONFIG, shuffle=False, seed=0)[0]
    match = batch["input_rpn_match"][1, :, 0]
    assert not (match == 1).any() and (match == -1).sum() == CONFIG.RPN_TRAIN_ANCHORS_PER_IMAGE
    assert not batch["input_gt_class_ids"][1].any() and not batch["input_rpn_bbox"][1].any()


class _BrokenDataset(EllipseDataset):
    def load_image(self, image_id):
        if image_id == 1:
            raise OSError("truncated file")
        return super().load_image(image_id)


def test_corrupt_sample_raises_naming_the_image():
    sequence = MaskRCNNSequence(_BrokenDataset(2), CONFIG, shuffle=False, seed=0)
    with pytest.raises(ValueError, match=r"image 1 \(memory://ellipse/1\).*truncated file"):
        sequence[0]
    generator = data_generator(_BrokenDataset(2), CONFIG, shuffle=False, batch_size=2)
    with pytest.raises(ValueError, match="memory://ellipse/1"):
        next(generator)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        MaskRCNNSequence(EllipseDataset(2), CONFIG, batch_size=-1)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        MaskRCNNSequence(EllipseDataset(2), CONFIG, steps_per_epoch=-2)
    with pytest.raises(ValueError, match="random_rois"):
        next(data_generator(EllipseDataset(2), CONFIG, detection_targets=True))


def test_data_generator_matterport_layout_skips_empty_images():
    dataset = EllipseDataset(3, seed=0, empty=(0,))
    np.random.seed(0)
    inputs, outputs = next(data_generator(dataset, CONFIG, shuffle=False, batch_size=2,
                                          random_rois=20, detection_targets=True))
    assert outputs[0].shape == (2, CONFIG.TRAIN_ROIS_PER_IMAGE, 1)
    assert outputs[1].shape == (2, CONFIG.TRAIN_ROIS_PER_IMAGE, CONFIG.NUM_CLASSES, 4)
    assert outputs[2].shape == (2, CONFIG.TRAIN_ROIS_PER_IMAGE, 14, 14, CONFIG.NUM_CLASSES)
    assert len(inputs) == 9
    assert inputs[7].shape == (2, 20, 4) and inputs[8].shape == (2, CONFIG.TRAIN_ROIS_PER_IMAGE, 4)
    # Images 1 and 2 (image 0 has no instance), in order.
    assert inputs[1][:, 0].tolist() == [1, 2]
    assert (inputs[4] > 0).any(axis=1).all() and (outputs[0] > 0).any()
