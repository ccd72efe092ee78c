"""mrcnn.data edge cases: no instances, crowds, one box, bad masks, augmentation."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from mrcnn import data
from mrcnn.anchors import compute_backbone_shapes, generate_pyramid_anchors
from mrcnn.boxes import apply_box_deltas, compute_overlaps
from mrcnn.config import Config
from mrcnn.dataset import Dataset

pytestmark = pytest.mark.backend_agnostic


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 3
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TRAIN_ROIS_PER_IMAGE = 30
    MINI_MASK_SHAPE = (16, 16)
    MASK_SHAPE = [14, 14]


@pytest.fixture(scope="module")
def config() -> Config:
    return TinyConfig()


@pytest.fixture(scope="module")
def anchors(config) -> np.ndarray:
    shape = config.IMAGE_SHAPE
    return generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                                    compute_backbone_shapes(config, shape),
                                    config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)


def _unsampled(config: Config) -> Config:
    """The same config with every anchor kept, so no random draw happens."""
    return type("Unsampled", (type(config),), {"RPN_TRAIN_ANCHORS_PER_IMAGE": 10**6})()


def _full_matrix_rpn_labels(anchors, gt_class_ids, gt_boxes):
    """Matterport's labelling on the full [anchors, gt] IoU matrix (the test oracle)."""
    labels = np.zeros(len(anchors), dtype=np.int32)
    crowd = gt_class_ids < 0
    not_crowd = np.ones(len(anchors), dtype=bool)
    if crowd.any():
        not_crowd = compute_overlaps(anchors, gt_boxes[crowd]).max(axis=1) < 0.001
    objects = gt_boxes[gt_class_ids > 0]
    overlaps = compute_overlaps(anchors, objects)
    best_per_anchor = overlaps.max(axis=1)
    labels[(best_per_anchor < 0.3) & not_crowd] = -1
    labels[np.any(overlaps == overlaps.max(axis=0), axis=1)] = 1
    labels[best_per_anchor >= 0.7] = 1
    return labels, overlaps.argmax(axis=1)


def _random_boxes(rng, count, size=64):
    corners = rng.integers(0, size, (count, 2, 2))
    corners.sort(axis=1)
    corners[:, 1] += 1  # no empty box
    return np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]],
                    axis=1).astype(np.int32)


# ---------------------------------------------------------------------------
# build_rpn_targets
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_rpn_labels_equal_the_full_iou_matrix_rules(config, anchors, seed):
    """Near-anchor pruning changes nothing: labels and targets as on the full matrix."""
    rng = np.random.default_rng(seed)
    gt_boxes = _random_boxes(rng, 4)
    gt_class_ids = np.array([1, 2, -1, 1], dtype=np.int32)  # one crowd box
    unsampled = _unsampled(config)
    rpn_match, rpn_bbox = data.build_rpn_targets(config.IMAGE_SHAPE, anchors, gt_class_ids,
                                                 gt_boxes, unsampled)
    expected, assignment = _full_matrix_rpn_labels(anchors, gt_class_ids, gt_boxes)
    np.testing.assert_array_equal(rpn_match, expected)

    # The targets turn each positive anchor back into its GT box, in anchor order.
    positive = np.flatnonzero(rpn_match == 1)
    deltas = rpn_bbox[:len(positive)] * config.RPN_BBOX_STD_DEV
    objects = gt_boxes[gt_class_ids > 0]
    np.testing.assert_allclose(apply_box_deltas(anchors[positive], deltas),
                               objects[assignment[positive]], atol=1e-3)
    assert not np.any(rpn_bbox[len(positive):])


@pytest.mark.parametrize("gt_boxes", [
    [[10, 10, 11, 60]],                      # 1 pixel tall: best IoU far under 0.3
    [[10, 2, 11, 62]],                       # the same, across most of the image
    [[30, 30, 32, 32], [0, 0, 64, 2]],       # tiny and thin boxes together
    [[16, 16, 48, 48], [16, 16, 48, 48]],    # duplicates: argmax takes the first
])
def test_rpn_small_thin_and_duplicate_boxes_match_the_full_matrix(config, anchors, gt_boxes):
    gt_boxes = np.array(gt_boxes, dtype=np.int32)
    gt_class_ids = np.ones(len(gt_boxes), dtype=np.int32)
    rpn_match, rpn_bbox = data.build_rpn_targets(config.IMAGE_SHAPE, anchors, gt_class_ids,
                                                 gt_boxes, _unsampled(config))
    expected, assignment = _full_matrix_rpn_labels(anchors, gt_class_ids, gt_boxes)
    np.testing.assert_array_equal(rpn_match, expected)
    assert np.sum(rpn_match == 1) >= len(gt_boxes) - 1  # each box has its best anchors
    positive = np.flatnonzero(rpn_match == 1)
    np.testing.assert_allclose(
        apply_box_deltas(anchors[positive], rpn_bbox[:len(positive)] * config.RPN_BBOX_STD_DEV),
        gt_boxes[assignment[positive]], atol=1e-3)


def test_rpn_best_anchor_of_a_box_may_differ_much_in_size(config):
    # The box's best anchor is 100x its area (IoU 0.01); a same-size anchor grazes it
    # (IoU 0.005). Only the big one ties for the box's best IoU.
    anchors = np.array([[0, 0, 100, 100], [9, 9, 19, 19], [60, 60, 70, 70]], np.float64)
    rpn_match, _ = data.build_rpn_targets(None, anchors, np.array([1], np.int32),
                                          np.array([[0, 0, 10, 10]], np.int32), config)
    np.testing.assert_array_equal(rpn_match, [1, -1, -1])


def test_rpn_no_gt_instances_gives_only_negatives(config, anchors):
    np.random.seed(0)
    rpn_match, rpn_bbox = data.build_rpn_targets(
        config.IMAGE_SHAPE, anchors, np.zeros([0], np.int32), np.zeros([0, 4], np.int32), config)
    assert not np.any(rpn_match == 1)
    assert np.sum(rpn_match == -1) == config.RPN_TRAIN_ANCHORS_PER_IMAGE
    assert rpn_bbox.shape == (config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4) and not rpn_bbox.any()


def test_rpn_crowd_box_neutralises_the_anchors_it_touches(config, anchors):
    crowd = np.array([[10, 10, 40, 40]], dtype=np.int32)
    # One more anchor that only grazes the crowd box (IoU ~ 1e-5, under 0.001).
    anchors = np.concatenate([anchors, [[39.9, 39.9, 60.0, 60.0]]])
    rpn_match, _ = data.build_rpn_targets(config.IMAGE_SHAPE, anchors,
                                          np.array([-1], np.int32), crowd, _unsampled(config))
    crowd_iou = compute_overlaps(anchors, crowd)[:, 0]
    # A crowd is not an object: nothing positive; anchors on it are left out of the loss.
    assert not np.any(rpn_match == 1)
    np.testing.assert_array_equal(rpn_match == 0, crowd_iou >= 0.001)
    assert 0 < crowd_iou[-1] < 0.001 and rpn_match[-1] == -1


def test_rpn_crowd_does_not_veto_the_best_anchor_of_a_gt_box(config, anchors):
    gt_boxes = np.array([[20, 20, 36, 36], [0, 0, 64, 64]], dtype=np.int32)
    rpn_match, _ = data.build_rpn_targets(config.IMAGE_SHAPE, anchors,
                                          np.array([1, -1], np.int32), gt_boxes,
                                          _unsampled(config))
    iou = compute_overlaps(anchors, gt_boxes[:1])[:, 0]
    # The whole image is crowd, so nothing is negative, but the GT box still gets anchors.
    assert not np.any(rpn_match == -1)
    np.testing.assert_array_equal(np.flatnonzero(rpn_match == 1),
                                  np.flatnonzero((iou >= 0.7) | (iou == iou.max())))


def test_rpn_single_gt_box(config, anchors):
    gt_boxes = np.array([[12, 20, 44, 36]], dtype=np.int32)
    np.random.seed(1)
    rpn_match, rpn_bbox = data.build_rpn_targets(config.IMAGE_SHAPE, anchors,
                                                 np.array([2], np.int32), gt_boxes, config)
    positive = np.flatnonzero(rpn_match == 1)
    iou = compute_overlaps(anchors, gt_boxes)[:, 0]
    assert len(positive) >= 1 and np.all((iou[positive] >= 0.7) | (iou[positive] == iou.max()))
    assert np.all(iou[rpn_match == -1] < 0.3)
    assert np.sum(rpn_match != 0) == config.RPN_TRAIN_ANCHORS_PER_IMAGE
    refined = apply_box_deltas(anchors[positive],
                               rpn_bbox[:len(positive)] * config.RPN_BBOX_STD_DEV)
    np.testing.assert_allclose(refined, np.repeat(gt_boxes, len(positive), axis=0), atol=1e-3)


def test_rpn_subsampling_caps_positives_at_half(config, anchors):
    # Many GT boxes give many positives: at most half of the sampled anchors stay positive.
    gt_boxes = np.array([[y, x, y + 8, x + 8] for y in range(0, 64, 8) for x in range(0, 64, 8)],
                        dtype=np.int32)
    small = type("Small", (TinyConfig,), {"RPN_TRAIN_ANCHORS_PER_IMAGE": 64})()
    np.random.seed(2)
    rpn_match, rpn_bbox = data.build_rpn_targets(small.IMAGE_SHAPE, anchors,
                                                 np.ones(len(gt_boxes), np.int32), gt_boxes, small)
    assert np.sum(rpn_match == 1) == 32 and np.sum(rpn_match == -1) == 32
    assert rpn_bbox.shape == (64, 4)


@pytest.mark.parametrize("kept_negatives", [2, 5])
def test_rpn_sampling_is_uniform_and_seeded(config, kept_negatives):
    # 6 negative anchors and 1 positive; kept_negatives + 1 sampled anchors. Over many
    # draws each subset of negatives is kept equally often (keeping few or dropping few).
    anchors = np.array([[0, 8 * i, 4, 8 * i + 4] for i in range(6)] + [[40, 40, 60, 60]],
                       dtype=np.float64)
    some = type("Some", (TinyConfig,), {"RPN_TRAIN_ANCHORS_PER_IMAGE": kept_negatives + 1})()
    gt = (np.array([1], np.int32), np.array([[40, 40, 60, 60]], np.int32))
    np.random.seed(5)
    subsets = {}
    for _ in range(3000):
        rpn_match, _ = data.build_rpn_targets(None, anchors, *gt, some)
        assert rpn_match[6] == 1
        key = tuple(np.flatnonzero(rpn_match == -1))
        subsets[key] = subsets.get(key, 0) + 1
    expected = 3000 / math.comb(6, kept_negatives)
    assert len(subsets) == math.comb(6, kept_negatives)
    assert all(len(k) == kept_negatives for k in subsets)
    assert 0.65 * expected < min(subsets.values()) <= max(subsets.values()) < 1.35 * expected
    np.random.seed(5)
    first, _ = data.build_rpn_targets(None, anchors, *gt, some)
    np.random.seed(5)
    np.testing.assert_array_equal(data.build_rpn_targets(None, anchors, *gt, some)[0], first)


def test_rpn_rejects_mismatched_gt(config, anchors):
    with pytest.raises(ValueError, match="gt_class_ids"):
        data.build_rpn_targets(config.IMAGE_SHAPE, anchors, np.array([1, 1], np.int32),
                               np.array([[0, 0, 8, 8]], np.int32), config)
    with pytest.raises(ValueError, match="anchors"):
        data.build_rpn_targets(config.IMAGE_SHAPE, anchors[:, :3], np.array([1], np.int32),
                               np.array([[0, 0, 8, 8]], np.int32), config)


# ---------------------------------------------------------------------------
# Head targets
# ---------------------------------------------------------------------------

def _rect_masks(boxes, shape=(64, 64)):
    masks = np.zeros(shape + (len(boxes),), dtype=bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return masks


def test_detection_targets_same_with_and_without_mini_masks(config):
    from mrcnn.masks import minimize_mask

    gt_boxes = np.array([[4, 4, 30, 20], [30, 34, 60, 62]], dtype=np.int32)
    gt_class_ids = np.array([1, 2], dtype=np.int32)
    masks = _rect_masks(gt_boxes)
    rois = data.generate_random_rois(config.IMAGE_SHAPE, 40, gt_class_ids, gt_boxes)
    full = type("Full", (TinyConfig,), {"USE_MINI_MASK": False})()
    np.random.seed(4)
    expected = data.build_detection_targets(rois, gt_class_ids, gt_boxes, masks, full)
    np.random.seed(4)
    mini = data.build_detection_targets(
        rois, gt_class_ids, gt_boxes, minimize_mask(gt_boxes, masks, config.MINI_MASK_SHAPE),
        config)
    for want, got in zip(expected, mini):
        np.testing.assert_allclose(got, want, atol=1e-6)
    # Foreground ROIs carry their class's box target and a mask inside the GT box.
    rois_out, class_ids, bboxes, target_masks = mini
    foreground = np.flatnonzero(class_ids > 0)
    assert len(foreground) > 0
    for i in foreground:
        others = [c for c in range(config.NUM_CLASSES) if c != class_ids[i]]
        assert not bboxes[i, others].any() and not target_masks[i, ..., others].any()
        assert target_masks[i, ..., class_ids[i]].max() > 0.5


def test_detection_targets_single_gt_box(config):
    gt_boxes = np.array([[10, 10, 40, 50]], dtype=np.int32)
    rois = np.array([[10, 10, 40, 50], [12, 8, 42, 48], [0, 0, 8, 8], [50, 50, 63, 63]],
                    dtype=np.int32)
    cfg = type("Four", (TinyConfig,), {"TRAIN_ROIS_PER_IMAGE": 4, "ROI_POSITIVE_RATIO": 0.5,
                                       "USE_MINI_MASK": False})()
    rois_out, class_ids, bboxes, masks = data.build_detection_targets(
        rois, np.array([2], np.int32), gt_boxes, _rect_masks(gt_boxes), cfg)
    # Two foreground ROIs (IoU > 0.5) first, in ROI order, then the two background ones.
    np.testing.assert_array_equal(rois_out, rois)
    np.testing.assert_array_equal(class_ids, [2, 2, 0, 0])
    assert not bboxes[0].any(), "an exact ROI needs no refinement"
    refined = apply_box_deltas(rois[1:2], bboxes[1:2, 2] * cfg.BBOX_STD_DEV)
    np.testing.assert_allclose(refined, gt_boxes, atol=1e-3)
    np.testing.assert_allclose(masks[0, ..., 2], 1.0)


def test_detection_targets_need_instances(config):
    with pytest.raises(ValueError, match="instance"):
        data.build_detection_targets(np.array([[0, 0, 8, 8]], np.int32), np.array([0], np.int32),
                                     np.array([[0, 0, 8, 8]], np.int32),
                                     np.zeros((16, 16, 1), bool), config)


def test_detection_targets_without_background_rois_raise(config):
    gt_boxes = np.array([[10, 10, 40, 50]], dtype=np.int32)
    with pytest.raises(ValueError, match="background"):
        data.build_detection_targets(gt_boxes, np.array([1], np.int32), gt_boxes,
                                     _rect_masks(gt_boxes), config)


def test_random_rois_without_gt_are_all_image_wide():
    np.random.seed(0)
    rois = data.generate_random_rois((32, 48, 3), 20, np.zeros([0], np.int32),
                                     np.zeros([0, 4], np.int32))
    assert rois.shape == (20, 4) and rois.dtype == np.int32
    assert np.all(rois[:, 2] > rois[:, 0]) and np.all(rois[:, 3] > rois[:, 1])
    assert rois[:, 2].max() < 32 and rois[:, 3].max() < 48


# ---------------------------------------------------------------------------
# Image meta
# ---------------------------------------------------------------------------

def test_image_meta_round_trip(config):
    active = np.array([1, 0, 1], dtype=np.int32)
    meta = data.compose_image_meta(7, (480, 640, 3), (64, 64, 3), (8, 0, 56, 64), 0.1, active)
    assert meta.shape == (config.IMAGE_META_SIZE,)
    parsed = data.parse_image_meta(np.stack([meta, meta]))
    np.testing.assert_array_equal(parsed["image_id"], [7, 7])
    np.testing.assert_array_equal(parsed["original_image_shape"][0], [480, 640, 3])
    np.testing.assert_array_equal(parsed["image_shape"][1], [64, 64, 3])
    np.testing.assert_array_equal(parsed["window"][0], [8, 0, 56, 64])
    np.testing.assert_allclose(parsed["scale"], 0.1)
    np.testing.assert_array_equal(parsed["active_class_ids"][0], active)


def test_parse_image_meta_rejects_a_single_row():
    with pytest.raises(ValueError, match="meta"):
        data.parse_image_meta(np.zeros(14))


# ---------------------------------------------------------------------------
# load_image_gt
# ---------------------------------------------------------------------------

class ArrayDataset(Dataset):
    """Images and masks held in memory; `mask_override` returns malformed masks."""

    def __init__(self, images, masks, class_ids):
        super().__init__()
        self.add_class("toy", 1, "square")
        self.add_class("toy", 2, "bar")
        for i in range(len(images)):
            self.add_image("toy", i, path=f"/data/toy/{i}.png")
        self.prepare()
        self.images, self.masks, self.ids = images, masks, class_ids

    def load_image(self, image_id):
        return self.images[image_id]

    def load_mask(self, image_id):
        return self.masks[image_id], self.ids[image_id]


# Grey levels of the two instances of _toy_image (the background is 20): far enough
# apart to tell them apart after a small brightness change.
LEVELS = (120, 230)


def _toy_image(height=48, width=64):
    """An image whose instances are the only bright pixels, one class per instance."""
    image = np.full((height, width, 3), 20, dtype=np.uint8)
    boxes = [(5, 6, 20, 30), (25, 40, 45, 60)]
    masks = np.zeros((height, width, len(boxes)), dtype=bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
        image[y1:y2, x1:x2] = LEVELS[i]
    return image, masks, np.array([1, 2], dtype=np.int32)


def test_load_image_gt_resizes_image_and_masks_together(config):
    image, masks, class_ids = _toy_image()
    dataset = ArrayDataset([image], [masks], [class_ids])
    out_image, meta, out_ids, bbox, out_masks = data.load_image_gt(dataset, config, 0)
    assert out_image.shape == (64, 64, 3) and out_masks.shape == (64, 64, 2)
    np.testing.assert_array_equal(out_ids, class_ids)
    for i in range(2):
        assert np.all(out_image[out_masks[..., i]] == LEVELS[i])
        y1, x1, y2, x2 = bbox[i]
        assert out_masks[y1:y2, x1:x2, i].all() and out_masks[..., i].sum() == (y2 - y1) * (x2 - x1)
    parsed = data.parse_image_meta(meta[None])
    np.testing.assert_array_equal(parsed["original_image_shape"][0], image.shape)
    np.testing.assert_array_equal(parsed["active_class_ids"][0], [1, 1, 1])


def test_load_image_gt_mini_masks(config):
    image, masks, class_ids = _toy_image()
    dataset = ArrayDataset([image], [masks], [class_ids])
    *_, bbox, mini = data.load_image_gt(dataset, config, 0, use_mini_mask=True)
    assert mini.shape == config.MINI_MASK_SHAPE + (2,) and mini.all()  # rectangles fill boxes


def test_load_image_gt_without_instances(config):
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    dataset = ArrayDataset([image], [np.zeros((40, 40, 0), bool)], [np.zeros([0], np.int32)])
    for mini in (False, True):
        out_image, meta, class_ids, bbox, masks = data.load_image_gt(dataset, config, 0,
                                                                     use_mini_mask=mini)
        assert out_image.shape == (64, 64, 3)
        assert class_ids.shape == (0,) and bbox.shape == (0, 4)
        assert masks.shape[-1] == 0


def test_load_image_gt_drops_instances_cropped_away():
    # A 64-column crop of 100 columns never holds both end bars; the centre one stays.
    image = np.zeros((64, 100, 3), dtype=np.uint8)
    masks = np.zeros((64, 100, 3), dtype=bool)
    masks[10:20, 0:4, 0] = masks[10:20, 96:100, 1] = masks[30:40, 48:52, 2] = True
    dataset = ArrayDataset([image], [masks], [np.array([2, 2, 1], np.int32)])
    crop = type("Crop", (TinyConfig,), {"IMAGE_RESIZE_MODE": "crop", "USE_MINI_MASK": False})()
    kept_counts = set()
    for seed in range(40):
        random.seed(seed)
        _, meta, class_ids, bbox, out_masks = data.load_image_gt(dataset, crop, 0)
        kept_counts.add(len(class_ids))
        assert len(class_ids) == len(bbox) == out_masks.shape[-1] <= 2
        assert out_masks.any(axis=(0, 1)).all() and (bbox[:, 2] > bbox[:, 0]).all()
        assert class_ids.tolist() in ([2, 1], [1, 2], [1])
        np.testing.assert_array_equal(bbox[class_ids == 1][0, [0, 2]], [30, 40])
    assert kept_counts == {1, 2}, "the seeds should show both a dropped and a kept end bar"


@pytest.mark.parametrize("masks, class_ids, message", [
    (np.zeros((30, 40, 2), bool), np.array([1, 2]), r"masks are \(30, 40\) but the image"),
    (np.zeros((48, 64), bool), np.array([1]), r"expected \[height, width, instances\]"),
    (np.zeros((48, 64, 2), bool), np.array([1]), r"class_ids of shape \(1,\) for 2 masks"),
])
def test_load_image_gt_rejects_bad_masks_naming_the_image(config, masks, class_ids, message):
    image, _, _ = _toy_image()
    dataset = ArrayDataset([image], [masks], [class_ids])
    with pytest.raises(ValueError, match=message) as error:
        data.load_image_gt(dataset, config, 0)
    assert "/data/toy/0.png" in str(error.value)


# ---------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------

def _assert_masks_follow_bright_pixels(image, masks):
    # Each instance is the set of pixels at its grey level (see _toy_image).
    grey = image.mean(axis=-1)
    instances = [(grey > 70) & (grey < 175), grey >= 175]
    for i in range(masks.shape[-1]):
        agree = (instances[i] == masks[..., i]).mean()
        assert agree > 0.99, f"mask {i} left its pixels ({agree:.3f} agree)"


def test_albumentations_moves_masks_with_the_image(config):
    import albumentations as A

    image, masks, class_ids = _toy_image()
    dataset = ArrayDataset([image], [masks], [class_ids])
    augmentation = A.Compose([A.HorizontalFlip(p=1), A.RandomRotate90(p=1),
                              A.RandomBrightnessContrast(brightness_limit=(0.05, 0.05),
                                                         contrast_limit=0, p=1)], seed=3)
    plain_image, *_, plain_masks = data.load_image_gt(dataset, config, 0)
    out_image, _, class_ids_out, bbox, out_masks = data.load_image_gt(
        dataset, config, 0, augmentation=augmentation)
    assert not np.array_equal(out_masks, plain_masks), "the geometric transforms did nothing"
    assert not np.array_equal(out_image, plain_image)
    np.testing.assert_array_equal(class_ids_out, class_ids)
    _assert_masks_follow_bright_pixels(out_image, out_masks)
    assert out_masks.dtype == bool


def test_albumentations_pixel_transforms_leave_masks_alone(config):
    import albumentations as A

    image, masks, class_ids = _toy_image()
    dataset = ArrayDataset([image], [masks], [class_ids])
    augmentation = A.Compose([A.GaussNoise(p=1), A.RandomBrightnessContrast(p=1)], seed=0)
    plain = data.load_image_gt(dataset, config, 0)
    out = data.load_image_gt(dataset, config, 0, augmentation=augmentation)
    assert not np.array_equal(out[0], plain[0])
    np.testing.assert_array_equal(out[4], plain[4])
    np.testing.assert_array_equal(out[3], plain[3])


def test_albumentations_that_resizes_is_rejected(config):
    import albumentations as A

    image, masks, class_ids = _toy_image()
    dataset = ArrayDataset([image], [masks], [class_ids])
    with pytest.raises(ValueError, match="changed the size"):
        data.load_image_gt(dataset, config, 0, augmentation=A.Resize(32, 32))


def test_imgaug_hooks_move_only_mask_safe_augmenters(config):
    try:
        data.import_imgaug()
    except ImportError:
        pytest.skip("imgaug is not installed (optional)")
    import imgaug.augmenters as iaa

    image, masks, class_ids = _toy_image()
    dataset = ArrayDataset([image], [masks], [class_ids])
    plain_image, *_, plain_masks = data.load_image_gt(dataset, config, 0)
    augmentation = iaa.Sequential([iaa.Fliplr(1.0), iaa.Multiply(1.05)])
    out_image, _, _, bbox, out_masks = data.load_image_gt(dataset, config, 0,
                                                          augmentation=augmentation)
    # Fliplr moved the masks; Multiply (not in MASK_AUGMENTERS) did not scale them.
    np.testing.assert_array_equal(out_masks, plain_masks[:, ::-1])
    _assert_masks_follow_bright_pixels(out_image, out_masks)


def test_unknown_augmentation_type_is_rejected(config):
    image, masks, class_ids = _toy_image()
    dataset = ArrayDataset([image], [masks], [class_ids])
    with pytest.raises(TypeError, match="albumentations"):
        data.load_image_gt(dataset, config, 0, augmentation=lambda image: image)


def test_albumentations_with_more_masks_than_opencv_channels():
    import albumentations as A

    image = np.zeros((16, 24, 3), dtype=np.uint8)
    masks = np.zeros((16, 24, 600), dtype=bool)
    masks[2:5, 1:4, ::2] = True
    out_image, out_masks = data.augment_image_and_masks(
        image, masks, A.Compose([A.HorizontalFlip(p=1)]))
    np.testing.assert_array_equal(out_masks, masks[:, ::-1])
