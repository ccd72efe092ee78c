"""Training batches for Mask R-CNN: a keras.utils.PyDataset, and matterport's generator.

Each image goes through ``load_image_gt`` (resize, augmentation, mini-masks) and
``build_rpn_targets``; a batch stacks them into the training model's inputs
(mrcnn/train_graph.py). Shapes (B = batch size, A = anchors, G = MAX_GT_INSTANCES):

    input_image        [B, H, W, C] float32, molded (mean subtracted)
    input_image_meta   [B, IMAGE_META_SIZE] float32
    input_rpn_match    [B, A, 1] int32
    input_rpn_bbox     [B, RPN_TRAIN_ANCHORS_PER_IMAGE, 4] float32
    input_gt_class_ids [B, G] int32, zero-padded
    input_gt_boxes     [B, G, (y1, x1, y2, x2)] float32 pixels, zero-padded
    input_gt_masks     [B, MINI_MASK_SHAPE or H, W, G] bool from collate and
                       data_generator (matterport), uint8 0/1 from MaskRCNNSequence
    input_roi          [B, random_rois, (y1, x1, y2, x2)] int32 pixels (random_rois > 0)

Determinism: every image slot of the run gets its own seed, derived from the
sequence's seed and the slot's position (epoch, batch, row), and all random draws for
that image (NumPy's and Python's global RNGs, which mrcnn.data uses, and the
albumentations / imgaug draws) are made from it. The result therefore does not depend
on which worker builds which batch, nor on their order. Because mrcnn.data draws from
the process-global RNGs, one image is built at a time under a lock: worker threads
overlap data loading with the training step, not with each other.

Images without instances: the PyDataset keeps them as negative-only samples (every
anchor negative or neutral, no positive ROI), which has static shapes and teaches the
RPN the background; matterport's ``data_generator`` skips them, and so does ours.
"""
from __future__ import annotations

import math
import random
import threading
from typing import Iterator, Sequence

import keras
import numpy as np

from mrcnn.anchors import compute_backbone_shapes, generate_pyramid_anchors
from mrcnn.data import (_describe, build_detection_targets, build_rpn_targets,
                        generate_random_rois, import_imgaug, load_image_gt, mold_image)

INPUT_NAMES = ("input_image", "input_image_meta", "input_rpn_match", "input_rpn_bbox",
               "input_gt_class_ids", "input_gt_boxes", "input_gt_masks")

# mrcnn.data draws from the process-global NumPy and Python RNGs.
_RNG_LOCK = threading.Lock()


def pixel_anchors(config, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """[A, (y1, x1, y2, x2)] anchors in pixels for the molded image shape (IMAGE_SHAPE)."""
    image_shape = config.IMAGE_SHAPE if image_shape is None else image_shape
    return generate_pyramid_anchors(
        config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
        compute_backbone_shapes(config, image_shape), config.BACKBONE_STRIDES,
        config.RPN_ANCHOR_STRIDE)


def _seed_everything(seed: int, augmentation) -> None:
    np.random.seed(seed)
    random.seed(seed)
    if augmentation is None:
        return
    if hasattr(augmentation, "set_random_seed"):  # albumentations >= 1.4
        augmentation.set_random_seed(seed)
    elif hasattr(augmentation, "to_deterministic"):  # imgaug
        import_imgaug()
        import imgaug

        imgaug.seed(seed)


def load_sample(dataset, config, image_id: int, anchors: np.ndarray, augmentation=None,
                random_rois: int = 0, augment: bool = False) -> dict:
    """One image's training inputs (unbatched), drawn from the global RNGs.

    Args:
        dataset: a prepared utils.Dataset.
        config: the Config.
        image_id: the image's index in `dataset`.
        anchors: [A, (y1, x1, y2, x2)] pixel anchors of the molded size (pixel_anchors).
        augmentation: albumentations / imgaug, or None (no augmentation).
        random_rois: number of random ROIs to add (USE_RPN_ROIS False), 0 for none.
        augment: matterport's deprecated random flip (see load_image_gt).

    Returns:
        dict with image (molded float32), image_meta, rpn_match [A], rpn_bbox, class_ids
        [n], boxes [n, 4], masks [..., n] (n <= MAX_GT_INSTANCES, a random subset when
        there are more, as matterport), and rois [random_rois, 4] int32 when asked.

    Raises:
        ValueError: the image or its masks cannot be loaded or are inconsistent; the
            message names the image.
    """
    try:
        image, image_meta, class_ids, boxes, masks = load_image_gt(
            dataset, config, image_id, augmentation=augmentation,
            use_mini_mask=config.USE_MINI_MASK, augment=augment)
    except Exception as error:  # re-raised: a bad sample must stop training, named
        raise ValueError(f"cannot load training sample {_describe(dataset, image_id)}: "
                         f"{type(error).__name__}: {error}") from error
    rpn_match, rpn_bbox = build_rpn_targets(image.shape, anchors, class_ids, boxes, config)
    if boxes.shape[0] > config.MAX_GT_INSTANCES:
        keep = np.random.choice(np.arange(boxes.shape[0]), config.MAX_GT_INSTANCES,
                                replace=False)
        class_ids, boxes, masks = class_ids[keep], boxes[keep], masks[:, :, keep]
    sample = {"image": mold_image(image.astype(np.float32), config),
              "image_meta": image_meta, "rpn_match": rpn_match, "rpn_bbox": rpn_bbox,
              "class_ids": class_ids, "boxes": boxes, "masks": masks}
    if random_rois:
        sample["rois"] = generate_random_rois(image.shape, random_rois, class_ids, boxes)
    return sample


def _padded(rows: Sequence[np.ndarray], length: int, axis: int, dtype) -> np.ndarray:
    """Stack arrays whose `axis` is at most `length`, zero-padding that axis."""
    shape = list(rows[0].shape)
    shape[axis] = length
    out = np.zeros([len(rows)] + shape, dtype=dtype)
    for i, row in enumerate(rows):
        index = [i] + [slice(None)] * len(shape)
        index[axis + 1] = slice(0, row.shape[axis])
        out[tuple(index)] = row
    return out


def collate(samples: Sequence[dict], config) -> list[np.ndarray]:
    """Stack samples into the training model's inputs, in INPUT_NAMES order (+ input_roi).

    Returns:
        [images, image_metas, rpn_match, rpn_bbox, gt_class_ids, gt_boxes, gt_masks]
        (+ [rois] when the samples have random ROIs); see the module docstring.
    """
    max_gt = config.MAX_GT_INSTANCES
    inputs = [
        np.stack([s["image"] for s in samples]).astype(np.float32),
        np.stack([s["image_meta"] for s in samples]).astype(np.float32),
        np.stack([s["rpn_match"] for s in samples]).astype(np.int32)[:, :, None],
        np.stack([s["rpn_bbox"] for s in samples]).astype(np.float32),
        _padded([s["class_ids"] for s in samples], max_gt, 0, np.int32),
        _padded([s["boxes"] for s in samples], max_gt, 0, np.float32),
        _padded([s["masks"] for s in samples], max_gt, 2, bool),
    ]
    if "rois" in samples[0]:
        inputs.append(np.stack([s["rois"] for s in samples]).astype(np.int32))
    return inputs


class MaskRCNNSequence(keras.utils.PyDataset):
    """Batches of training inputs for ``keras_model.fit``, deterministic under a seed.

    Batch ``i`` of epoch ``e`` holds the images at positions ``(e * len(self) + i) *
    batch_size + row`` of an endless sequence of passes over the dataset, each pass in
    its own random order (or in image order without shuffle). An epoch is
    ``steps_per_epoch`` batches, or one pass when it is None, so matterport's
    STEPS_PER_EPOCH works with datasets of any size.

    Args:
        dataset: a prepared utils.Dataset.
        config: the Config (BATCH_SIZE is the default batch size).
        shuffle: a random order per pass.
        augmentation: albumentations / imgaug, or None.
        random_rois: random ROIs per image (USE_RPN_ROIS False), 0 for none.
        batch_size: images per batch; default config.BATCH_SIZE.
        no_augmentation_sources: dataset sources whose images are never augmented.
        steps_per_epoch: batches per epoch; default one pass (at least one batch).
        seed: the run's seed; None draws one.
        initial_epoch: the epoch that the first batch requested belongs to (resume).
        workers, use_multiprocessing, max_queue_size: as keras.utils.PyDataset.

    ``__getitem__`` returns ``({input name: array},)`` (x only; the model computes its
    losses itself), with the masks as uint8 0/1.
    """

    def __init__(self, dataset, config, shuffle: bool = True, augmentation=None,
                 random_rois: int = 0, batch_size: int | None = None,
                 no_augmentation_sources: Sequence[str] | None = None,
                 steps_per_epoch: int | None = None, seed: int | None = None,
                 initial_epoch: int = 0, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        self.image_ids = np.asarray(dataset.image_ids)
        if self.image_ids.size == 0:
            raise ValueError("the dataset has no images; call dataset.prepare() after "
                             "adding images")
        self.dataset = dataset
        self.config = config
        self.shuffle = bool(shuffle)
        self.augmentation = augmentation
        self.random_rois = int(random_rois)
        self.batch_size = int(batch_size or config.BATCH_SIZE)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.no_augmentation_sources = set(no_augmentation_sources or ())
        if steps_per_epoch is not None and int(steps_per_epoch) < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.steps_per_epoch = (int(steps_per_epoch) if steps_per_epoch
                                else max(1, math.ceil(len(self.image_ids) / self.batch_size)))
        self.seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
        self.epoch = int(initial_epoch)
        self.anchors = pixel_anchors(config)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def image_id_at(self, position: int) -> int:
        """The image id at a position of the endless sequence of passes."""
        count = len(self.image_ids)
        epoch_pass, offset = divmod(position, count)
        if not self.shuffle:
            return int(self.image_ids[offset])
        order = np.random.default_rng([self.seed, epoch_pass]).permutation(count)
        return int(self.image_ids[order[offset]])

    def _sample(self, position: int) -> dict:
        image_id = self.image_id_at(position)
        augmentation = self.augmentation
        source = self.dataset.image_info[image_id]["source"]
        if source in self.no_augmentation_sources:
            augmentation = None
        # A 32-bit seed per position; SeedSequence mixes the run seed and the position.
        seed = int(np.random.SeedSequence([self.seed, position]).generate_state(1)[0])
        with _RNG_LOCK:
            _seed_everything(seed, augmentation)
            return load_sample(self.dataset, self.config, image_id, self.anchors,
                               augmentation, self.random_rois)

    def batch_inputs(self, index: int) -> list[np.ndarray]:
        """The inputs of batch `index` of the current epoch, in INPUT_NAMES order."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        first = (self.epoch * len(self) + index) * self.batch_size
        samples = [self._sample(first + row) for row in range(self.batch_size)]
        return collate(samples, self.config)

    def __getitem__(self, index: int):
        inputs = self.batch_inputs(index)
        # tf.distribute cannot batch bool tensors; the model takes the masks as uint8.
        inputs[6] = inputs[6].view(np.uint8)
        names = INPUT_NAMES + (("input_roi",) if self.random_rois else ())
        return (dict(zip(names, inputs)),)


def data_generator(dataset, config, shuffle: bool = True, augment: bool = False,
                   augmentation=None, random_rois: int = 0, batch_size: int = 1,
                   detection_targets: bool = False,
                   no_augmentation_sources: Sequence[str] | None = None) -> Iterator:
    """Matterport's endless generator of ``(inputs, outputs)`` training batches.

    ``inputs`` is the list of INPUT_NAMES arrays, plus the random ROIs
    [B, random_rois, 4] when random_rois > 0, plus the sampled ROIs
    [B, TRAIN_ROIS_PER_IMAGE, 4] with detection_targets. ``outputs`` is empty, or with
    detection_targets the heads' targets [class_ids [B, T, 1], bbox [B, T, NUM_CLASSES, 4],
    mask [B, T, h, w, NUM_CLASSES]], as in matterport. Images without instances are
    skipped, as matterport does; an image that cannot be loaded raises ValueError naming
    it (matterport logged and skipped it). Draws come from the global RNGs: seed NumPy
    and ``random`` for a repeatable sequence. ``augment`` is matterport's deprecated
    flip flag (see load_image_gt); use ``augmentation``.
    """
    if detection_targets and not random_rois:
        raise ValueError("detection_targets=True needs random_rois > 0: the targets are "
                         "built for the random ROIs")
    image_ids = np.copy(dataset.image_ids)
    if image_ids.size == 0:
        raise ValueError("the dataset has no images; call dataset.prepare() first")
    anchors = pixel_anchors(config)
    skip_sources = set(no_augmentation_sources or ())
    index, samples = -1, []
    while True:
        index = (index + 1) % len(image_ids)
        if shuffle and index == 0:
            np.random.shuffle(image_ids)
        image_id = int(image_ids[index])
        source = dataset.image_info[image_id]["source"]
        sample = load_sample(dataset, config, image_id, anchors,
                             None if source in skip_sources else augmentation,
                             random_rois, augment=augment and source not in skip_sources)
        if not np.any(sample["class_ids"] > 0):
            continue
        if detection_targets:
            sample["targets"] = build_detection_targets(
                sample["rois"], sample["class_ids"], sample["boxes"].astype(np.int32),
                sample["masks"], config)
        samples.append(sample)
        if len(samples) < batch_size:
            continue
        inputs, outputs = collate(samples, config), []
        if detection_targets:
            rois, class_ids, bbox, mask = (np.stack(parts) for parts in
                                           zip(*(s["targets"] for s in samples)))
            inputs.append(rois)
            outputs = [class_ids[..., None], bbox, mask]
        samples = []
        yield inputs, outputs
