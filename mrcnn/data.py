"""Training data in numpy: image meta, molding, ground truth and RPN / head targets.

Matterport's ``mrcnn.model`` module functions, re-exported by ``mrcnn.model``:
``compose_image_meta``, ``parse_image_meta``, ``mold_image``, ``unmold_image``,
``load_image_gt``, ``build_rpn_targets``, ``build_detection_targets`` and
``generate_random_rois``. Results and dtypes are matterport's. All random draws
come from NumPy's global RNG (and Python's ``random`` for crops), so
``np.random.seed`` makes a run repeatable; generate_random_rois and
build_detection_targets even make matterport's draws, call for call, while
build_rpn_targets samples anchors its own, faster way (see there).

Shapes, in matterport's notation:
    anchors     [num_anchors, (y1, x1, y2, x2)] in pixels, y2/x2 exclusive
    gt_boxes    [num_instances, (y1, x1, y2, x2)] int32, in pixels
    gt_masks    [height, width, num_instances] bool, or
                [MINI_MASK_SHAPE[0], MINI_MASK_SHAPE[1], num_instances] with mini-masks
    image_meta  [IMAGE_META_SIZE] = [image_id, original (H, W, C), molded (H, W, C),
                window (y1, x1, y2, x2), scale, active_class_ids[NUM_CLASSES]]
"""
from __future__ import annotations

import logging
import random

import numpy as np

from mrcnn._checks import array_arg, boxes_arg, masks_arg, same_count
from mrcnn.boxes import box_refinement, compute_overlaps, extract_bboxes
from mrcnn.image import mold_image, resize, resize_image, unmold_image
from mrcnn.masks import expand_mask, minimize_mask, resize_mask

__all__ = [
    "MASK_AUGMENTERS", "augment_image_and_masks", "build_detection_targets",
    "build_rpn_targets", "compose_image_meta", "generate_random_rois", "import_imgaug",
    "load_image_gt", "mold_image", "parse_image_meta", "unmold_image",
]

logger = logging.getLogger(__name__)

# imgaug augmenters that move pixels and so must be applied to masks too; the others
# (colour, blur, noise) touch the image only. Matterport's list; extend it for your own
# mask-safe augmenters.
MASK_AUGMENTERS = ["Sequential", "SomeOf", "OneOf", "Sometimes", "Fliplr", "Flipud",
                   "CropAndPad", "Affine", "PiecewiseAffine"]

# Anchor labels in rpn_match.
POSITIVE, NEGATIVE, NEUTRAL = 1, -1, 0


# ---------------------------------------------------------------------------
# Image meta (mold_image / unmold_image live in mrcnn.image and are re-exported here)
# ---------------------------------------------------------------------------

def compose_image_meta(image_id: int, original_image_shape, image_shape, window,
                       scale: float, active_class_ids) -> np.ndarray:
    """Pack the attributes of one image into a 1-D array (the model's image_meta input).

    Args:
        image_id: the image's index in its Dataset.
        original_image_shape: (H, W, C) before resizing or padding.
        image_shape: (H, W, C) after resizing and padding.
        window: (y1, x1, y2, x2) of the real image inside the padded one, in pixels.
        scale: the resize factor applied to the original image.
        active_class_ids: [NUM_CLASSES] 1 for the classes of this image's source.

    Returns:
        [1 + 3 + 3 + 4 + 1 + NUM_CLASSES]. As in matterport the dtype follows NumPy's
        promotion of the values: int64 when every value is an integer (scale is the
        int 1 when nothing was resized), float64 otherwise.
    """
    values = ([image_id] + list(original_image_shape) + list(image_shape)
              + list(window) + [scale] + list(active_class_ids))
    return np.array(values)


def parse_image_meta(meta: np.ndarray) -> dict[str, np.ndarray]:
    """Split a batch of image_meta rows into its fields (the inverse of compose_image_meta).

    Args:
        meta: [batch, IMAGE_META_SIZE].

    Returns:
        {"image_id": [batch] int32, "original_image_shape": [batch, 3] int32,
         "image_shape": [batch, 3] int32, "window": [batch, (y1, x1, y2, x2)] int32,
         "scale": [batch] float32, "active_class_ids": [batch, NUM_CLASSES] int32}
    """
    meta = array_arg("meta", meta, ndim=2, layout="[batch, IMAGE_META_SIZE]")
    if meta.shape[1] < 13:
        raise ValueError(f"meta must have at least 13 columns (12 fields and one class); "
                         f"got shape {meta.shape}")
    return {
        "image_id": meta[:, 0].astype(np.int32),
        "original_image_shape": meta[:, 1:4].astype(np.int32),
        "image_shape": meta[:, 4:7].astype(np.int32),
        "window": meta[:, 7:11].astype(np.int32),
        "scale": meta[:, 11].astype(np.float32),
        "active_class_ids": meta[:, 12:].astype(np.int32),
    }


# ---------------------------------------------------------------------------
# Ground truth of one image
# ---------------------------------------------------------------------------

def _describe(dataset, image_id: int) -> str:
    """How an error message names an image: the dataset's reference, else its path."""
    try:
        reference = dataset.image_reference(image_id)
    except Exception:  # a broken override must not hide the error being reported
        reference = ""
    if not reference:
        info = dataset.image_info[image_id] if image_id < len(dataset.image_info) else {}
        reference = info.get("path", "")
    return f"image {image_id} ({reference})" if reference else f"image {image_id}"


def load_image_gt(dataset, config, image_id: int, augmentation=None,
                  use_mini_mask: bool = False, *, augment: bool = False):
    """Load one image with its ground truth, resized and padded to the model's input size.

    Instances whose mask is empty after resizing, cropping or augmentation are
    dropped, as in matterport.

    Args:
        dataset: a prepared utils.Dataset.
        config: the model Config (IMAGE_RESIZE_MODE, IMAGE_MIN_DIM, IMAGE_MAX_DIM,
            IMAGE_MIN_SCALE, MINI_MASK_SHAPE).
        image_id: index of the image in the dataset.
        augmentation: an ``albumentations`` transform or Compose (recommended), or an
            imgaug augmenter (matterport's, used only if imgaug is installed). It runs
            after resizing and must keep the image size. Pixel-level transforms
            (colour, blur, noise) change the image only; geometric ones move image
            and masks together (albumentations by its own rules, imgaug by
            ``MASK_AUGMENTERS``).
        use_mini_mask: return masks cropped to their boxes and resized to
            MINI_MASK_SHAPE.
        augment: matterport's deprecated flag: a random left-right flip (Python's
            ``random``). Use ``augmentation`` instead.

    Returns:
        image: [H, W, 3] uint8, H, W from the resize mode.
        image_meta: [IMAGE_META_SIZE], see compose_image_meta.
        class_ids: [instance_count] int32.
        bbox: [instance_count, (y1, x1, y2, x2)] int32.
        mask: [H, W, instance_count] bool, or [MINI_MASK_SHAPE, instance_count].

    Raises:
        ValueError: the masks are not [H, W, N] at the image's size, or class_ids
            does not have N entries (the message names the image).
    """
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    mask, class_ids = _checked_gt(dataset, image_id, image, mask, class_ids)
    original_shape = image.shape

    image, window, scale, padding, crop = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
        max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE)
    mask = resize_mask(mask, scale, padding, crop)

    if augment:
        logger.warning("'augment' is deprecated; use 'augmentation' instead.")
        if random.randint(0, 1):
            image = np.fliplr(image)
            mask = np.fliplr(mask)
    if augmentation:
        image, mask = augment_image_and_masks(image, mask, augmentation,
                                              name=_describe(dataset, image_id))

    # Resizing, cropping or augmenting can leave a mask empty: its box is all zeros.
    bbox = extract_bboxes(mask)
    present = bbox[:, 2] > bbox[:, 0]
    if not present.all():
        mask, class_ids, bbox = mask[:, :, present], class_ids[present], bbox[present]

    # This image's source supports only some classes of a multi-source dataset.
    active_class_ids = np.zeros([dataset.num_classes], dtype=np.int32)
    source = dataset.image_info[image_id]["source"]
    active_class_ids[dataset.source_class_ids[source]] = 1

    if use_mini_mask:
        mask = minimize_mask(bbox, mask, config.MINI_MASK_SHAPE)

    image_meta = compose_image_meta(image_id, original_shape, image.shape,
                                    window, scale, active_class_ids)
    return image, image_meta, class_ids, bbox, mask


def _checked_gt(dataset, image_id: int, image: np.ndarray, mask, class_ids):
    """Validate what load_mask returned; masks become bool, class ids an array."""
    mask = np.asarray(mask)
    class_ids = np.asarray(class_ids)
    if mask.ndim != 3:
        raise ValueError(f"{_describe(dataset, image_id)}: load_mask returned masks of shape "
                         f"{mask.shape}; expected [height, width, instances]")
    if mask.shape[:2] != image.shape[:2]:
        raise ValueError(f"{_describe(dataset, image_id)}: masks are {mask.shape[:2]} but the "
                         f"image is {image.shape[:2]} (height, width)")
    if class_ids.ndim != 1 or class_ids.shape[0] != mask.shape[2]:
        raise ValueError(f"{_describe(dataset, image_id)}: load_mask returned class_ids of "
                         f"shape {class_ids.shape} for {mask.shape[2]} masks")
    return mask.astype(bool, copy=False), class_ids


# ---------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------

def augment_image_and_masks(image: np.ndarray, mask: np.ndarray, augmentation,
                            name: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """Apply one random draw of `augmentation` to an image and its instance masks.

    Args:
        image: [H, W, C] uint8.
        mask: [H, W, N] bool.
        augmentation: an albumentations transform / Compose, or an imgaug augmenter.
        name: names the image in errors.

    Returns:
        (image [H, W, C], mask [H, W, N] bool), the same shapes as given.

    Raises:
        ValueError: the augmentation changed the image or mask size.
        TypeError: `augmentation` is neither albumentations nor imgaug.
    """
    if _is_albumentations(augmentation):
        out_image, out_mask = _albumentations(image, mask, augmentation)
    elif hasattr(augmentation, "to_deterministic"):
        out_image, out_mask = _imgaug(image, mask, augmentation)
    else:
        raise TypeError(f"augmentation must be an albumentations transform or an imgaug "
                        f"augmenter; got {type(augmentation).__name__}")
    if out_image.shape != image.shape or out_mask.shape != mask.shape:
        raise ValueError(f"{name}: augmentation changed the size from image {image.shape} / "
                         f"masks {mask.shape} to {out_image.shape} / {out_mask.shape}; "
                         f"load_image_gt augments after resizing, so it must keep the size")
    return out_image, out_mask


def _is_albumentations(augmentation) -> bool:
    # Checked by module so that albumentations is imported only when used.
    return type(augmentation).__module__.split(".")[0] == "albumentations"


# OpenCV, under most albumentations transforms, handles at most 512 channels.
_CV2_MAX_CHANNELS = 512


def _albumentations(image, mask, augmentation):
    if mask.shape[2] == 0:
        return augmentation(image=image)["image"], mask
    # Geometric transforms move masks with nearest-neighbour interpolation;
    # pixel-level transforms leave them alone.
    if mask.shape[2] > _CV2_MAX_CHANNELS:
        out = augmentation(image=image,
                           masks=np.ascontiguousarray(mask.transpose(2, 0, 1), np.uint8))
        return out["image"], np.stack(list(out["masks"]), axis=-1).astype(bool)
    out = augmentation(image=image, mask=mask.astype(np.uint8))
    out_mask = out["mask"]
    if out_mask.ndim == 2:  # some transforms squeeze a single channel
        out_mask = out_mask[:, :, None]
    return out["image"], out_mask.astype(bool)


def _imgaug(image, mask, augmentation):
    imgaug = import_imgaug()

    def mask_safe(images, augmenter, parents, default):
        return augmenter.__class__.__name__ in MASK_AUGMENTERS

    # A deterministic copy replays the same random draw on the masks.
    det = augmentation.to_deterministic()
    out_image = det.augment_image(image)
    if mask.shape[2] == 0:
        return out_image, mask
    out_mask = det.augment_image(mask.astype(np.uint8),
                                 hooks=imgaug.HooksImages(activator=mask_safe))
    return out_image, out_mask.astype(bool)


def import_imgaug():
    """Import and return imgaug, first restoring ``np.sctypes`` under NumPy 2.

    imgaug 0.4 reads ``np.sctypes``, removed in NumPy 2.0, when it is imported. Call
    this before ``import imgaug.augmenters as iaa`` in code that builds augmenters.
    The attribute is added to the numpy module, and only when it is missing.
    """
    if "sctypes" not in vars(np):
        np.sctypes = {
            "int": [np.int8, np.int16, np.int32, np.int64],
            "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
            "float": [np.float16, np.float32, np.float64],
            "complex": [np.complex64, np.complex128],
            "others": [bool, object, bytes, str, np.void],
        }
    try:
        import imgaug
    except ImportError as exc:
        raise ImportError("an imgaug augmenter was given but imgaug is not importable; "
                          "pip install imgaug, or use albumentations") from exc
    return imgaug


# ---------------------------------------------------------------------------
# RPN targets
# ---------------------------------------------------------------------------

# IoU <= min(area_a, area_b) / max(area_a, area_b). An anchor whose area is out of
# that ratio with a GT box cannot reach IoU 0.3 with it; 0.29 leaves room for rounding.
_SIZE_RATIO = 0.29


def _touching(columns: tuple[np.ndarray, ...], box: np.ndarray) -> np.ndarray:
    """Indices of the anchors that intersect `box` with a positive area.

    Every other anchor has IoU 0 with the box, so IoUs are computed only for these:
    a box touches a few thousand of the 262k anchors of a 1024 image.
    """
    y1, x1, y2, x2 = columns
    return np.flatnonzero((y1 < box[2]) & (y2 > box[0]) & (x1 < box[3]) & (x2 > box[1]))


def _iou_with(anchors: np.ndarray, box: np.ndarray) -> np.ndarray:
    """[len(anchors)] IoU with one box, by utils.compute_overlaps (bit-equal to matterport)."""
    return compute_overlaps(anchors, box[None])[:, 0]


def build_rpn_targets(image_shape, anchors: np.ndarray, gt_class_ids: np.ndarray,
                      gt_boxes: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """Label anchors positive / negative / neutral and compute their regression targets.

    Matterport's rules: an anchor with IoU >= 0.7 with a GT box is positive, and so
    is every anchor that ties for a GT box's highest IoU; an anchor with IoU < 0.3
    with every GT box is negative unless it has IoU >= 0.001 with a crowd box
    (class id < 0). Then at most RPN_TRAIN_ANCHORS_PER_IMAGE // 2 positives are
    kept, and negatives fill the rest of RPN_TRAIN_ANCHORS_PER_IMAGE.

    The labels before sampling are exactly matterport's (the same IoU arithmetic,
    computed only for the anchors that can matter). The sampling is uniform and uses
    NumPy's global RNG, so ``np.random.seed`` makes it repeatable as in matterport,
    but the draws are not matterport's: its ``np.random.choice`` shuffles all
    262k anchors of a 1024 image, which alone costs more than the rest of this
    function.

    Unlike matterport, an image without GT boxes gives only negatives (matterport
    raises), and a GT box that touches no anchor makes no anchor positive
    (matterport would mark every anchor as a tie at IoU 0).

    Args:
        image_shape: (H, W, C); unused, kept for matterport's signature.
        anchors: [num_anchors, (y1, x1, y2, x2)] in pixels.
        gt_class_ids: [num_gt] int; negative for crowd boxes, 0 rows are ignored.
        gt_boxes: [num_gt, (y1, x1, y2, x2)] in pixels.
        config: RPN_TRAIN_ANCHORS_PER_IMAGE and RPN_BBOX_STD_DEV are read.

    Returns:
        rpn_match: [num_anchors] int32, 1 positive, -1 negative, 0 neutral.
        rpn_bbox: [RPN_TRAIN_ANCHORS_PER_IMAGE, (dy, dx, log(dh), log(dw))] float64,
            divided by RPN_BBOX_STD_DEV; one row per positive anchor in ascending
            anchor order (matched to the GT box of highest IoU), then zero rows.
    """
    anchors = boxes_arg("anchors", anchors)
    gt_boxes = boxes_arg("gt_boxes", gt_boxes)
    gt_class_ids = array_arg("gt_class_ids", gt_class_ids, ndim=1, layout="[num_gt]")
    same_count("gt_class_ids", gt_class_ids, "gt_boxes", gt_boxes)
    crowd_boxes = gt_boxes[gt_class_ids < 0]
    gt_boxes = gt_boxes[gt_class_ids > 0]

    rpn_match = np.full([anchors.shape[0]], NEGATIVE, dtype=np.int32)
    if len(crowd_boxes) or len(gt_boxes):
        columns = tuple(np.ascontiguousarray(anchors[:, i]) for i in range(4))
    for box in crowd_boxes:
        near = _touching(columns, box)
        rpn_match[near[_iou_with(anchors[near], box) >= 0.001]] = NEUTRAL

    neutral, positive = [], []
    for box in gt_boxes:
        near = _touching(columns, box)
        if len(near) == 0:
            continue
        candidates = anchors[near]
        area = (candidates[:, 2] - candidates[:, 0]) * (candidates[:, 3] - candidates[:, 1])
        box_area = (box[2] - box[0]) * (box[3] - box[1])
        sized = np.flatnonzero((area * _SIZE_RATIO <= box_area) & (box_area * _SIZE_RATIO <= area))
        iou = _iou_with(candidates[sized], box)
        if iou.size == 0 or iou.max() < 0.3:
            # The box's best anchor is under 0.3 (a small or thin box): its ties can
            # be any anchor that touches it.
            sized = np.arange(len(near))
            iou = _iou_with(candidates, box)
        ids = near[sized]
        best = iou.max()
        neutral.append(ids[iou >= 0.3])
        if best > 0:
            # Exact ties count: all anchors sharing the box's best IoU are positive.
            positive.append(ids[(iou >= 0.7) | (iou == best)])
    if neutral:
        rpn_match[np.concatenate(neutral)] = NEUTRAL
    if positive:
        rpn_match[np.concatenate(positive)] = POSITIVE

    _subsample(rpn_match, config.RPN_TRAIN_ANCHORS_PER_IMAGE)

    rpn_bbox = np.zeros((config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4))
    positive = np.flatnonzero(rpn_match == POSITIVE)
    if len(positive):
        # matterport's argmax: the first GT box of highest IoU.
        targets = gt_boxes[compute_overlaps(anchors[positive], gt_boxes).argmax(axis=1)]
        rpn_bbox[:len(positive)] = (_rpn_deltas(anchors[positive], targets)
                                    / config.RPN_BBOX_STD_DEV)
    return rpn_match, rpn_bbox


def _subsample(rpn_match: np.ndarray, anchors_per_image: int) -> None:
    """Neutralise random surplus positives, then negatives, in place.

    At most anchors_per_image // 2 positives stay; negatives fill up to
    anchors_per_image.
    """
    positive = np.flatnonzero(rpn_match == POSITIVE)
    if len(positive) > anchors_per_image // 2:
        _keep_random(rpn_match, positive, anchors_per_image // 2)
    num_positive = min(len(positive), anchors_per_image // 2)
    negative = np.flatnonzero(rpn_match == NEGATIVE)
    if len(negative) > anchors_per_image - num_positive:
        _keep_random(rpn_match, negative, anchors_per_image - num_positive)


def _keep_random(rpn_match: np.ndarray, ids: np.ndarray, keep: int) -> None:
    """Neutralise all but `keep` of `ids`, chosen uniformly, in place."""
    label = rpn_match[ids[0]]
    if keep <= len(ids) - keep:
        rpn_match[ids] = NEUTRAL
        rpn_match[ids[_distinct_random(len(ids), keep)]] = label
    else:
        rpn_match[ids[_distinct_random(len(ids), len(ids) - keep)]] = NEUTRAL


def _distinct_random(n: int, count: int) -> np.ndarray:
    """`count` distinct integers in [0, n), a uniform random subset, from np.random.

    The first `count` distinct values of a sequence of uniform draws are a uniform
    subset; drawing twice as many as needed rarely needs a second round. Costs
    O(count), where np.random.choice(n, count, replace=False) shuffles all n.
    """
    chosen = np.zeros([0], dtype=np.int64)
    while len(chosen) < count:
        draws = np.concatenate([chosen, np.random.randint(0, n, 2 * (count - len(chosen)) + 8)])
        _, first = np.unique(draws, return_index=True)
        chosen = draws[np.sort(first)][:count]
    return chosen


def _rpn_deltas(anchors: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """[N, (dy, dx, log(dh), log(dw))] from anchors to their GT boxes, in float64.

    Not utils.box_refinement: that one works in float32 (the head targets), while
    matterport computes the RPN targets in float64 and the reference holds them to it.
    """
    gt_h = gt_boxes[:, 2] - gt_boxes[:, 0]
    gt_w = gt_boxes[:, 3] - gt_boxes[:, 1]
    a_h = anchors[:, 2] - anchors[:, 0]
    a_w = anchors[:, 3] - anchors[:, 1]
    dy = (gt_boxes[:, 0] + 0.5 * gt_h - (anchors[:, 0] + 0.5 * a_h)) / a_h
    dx = (gt_boxes[:, 1] + 0.5 * gt_w - (anchors[:, 1] + 0.5 * a_w)) / a_w
    return np.stack([dy, dx, np.log(gt_h / a_h), np.log(gt_w / a_w)], axis=1)


# ---------------------------------------------------------------------------
# Head targets (used when training without RPN proposals, USE_RPN_ROIS = False)
# ---------------------------------------------------------------------------

def generate_random_rois(image_shape, count: int, gt_class_ids: np.ndarray,
                         gt_boxes: np.ndarray) -> np.ndarray:
    """Random ROIs: 90% near the GT boxes (within one box size), the rest anywhere.

    Drawn with NumPy's global RNG in matterport's order, so a seeded call gives
    matterport's ROIs. Every ROI has a height and width of at least 1 pixel.

    Args:
        image_shape: (H, W, ...).
        count: number of ROIs.
        gt_class_ids: [num_gt]; unused, kept for matterport's signature.
        gt_boxes: [num_gt, (y1, x1, y2, x2)] in pixels.

    Returns:
        [count, (y1, x1, y2, x2)] int32: int(0.9 * count / num_gt) ROIs per GT box in
        GT order, then the image-wide ones.
    """
    gt_boxes = boxes_arg("gt_boxes", gt_boxes)
    height, width = int(image_shape[0]), int(image_shape[1])
    if height < 2 or width < 2:
        raise ValueError(f"image_shape {tuple(image_shape)} is too small for ROIs of at "
                         f"least one pixel")
    rois = np.zeros((count, 4), dtype=np.int32)
    num_gt = gt_boxes.shape[0]
    rois_per_box = int(0.9 * count / num_gt) if num_gt else 0
    for i, (y1, x1, y2, x2) in enumerate(gt_boxes):
        h, w = y2 - y1, x2 - x1
        window = (max(y1 - h, 0), min(y2 + h, height), max(x1 - w, 0), min(x2 + w, width))
        if window[1] - window[0] < 2 or window[3] - window[2] < 2:
            raise ValueError(f"gt_boxes[{i}] = {gt_boxes[i].tolist()} leaves no room for "
                             f"ROIs of at least one pixel")
        rois[rois_per_box * i:rois_per_box * (i + 1)] = _random_boxes(rois_per_box, *window)
    remaining = count - rois_per_box * num_gt
    if remaining:
        rois[-remaining:] = _random_boxes(remaining, 0, height, 0, width)
    return rois


def _random_boxes(count: int, y_low: int, y_high: int, x_low: int,
                  x_high: int) -> np.ndarray:
    """[count, (y1, x1, y2, x2)] with corners drawn in [low, high), no zero side.

    Draws twice as many corner pairs as needed and retries until enough pairs have
    distinct ends, with matterport's sequence of np.random.randint calls.
    """
    while True:
        y = np.random.randint(y_low, y_high, (count * 2, 2))
        x = np.random.randint(x_low, x_high, (count * 2, 2))
        y = y[y[:, 0] != y[:, 1]][:count]
        x = x[x[:, 0] != x[:, 1]][:count]
        if len(y) == count and len(x) == count:
            break
    y.sort(axis=1)
    x.sort(axis=1)
    return np.stack([y[:, 0], x[:, 0], y[:, 1], x[:, 1]], axis=1)


def build_detection_targets(rpn_rois: np.ndarray, gt_class_ids: np.ndarray,
                            gt_boxes: np.ndarray, gt_masks: np.ndarray, config):
    """Sample ROIs and give them class, box and mask targets for the heads.

    ROIs with IoU > 0.5 with a GT box are foreground (at most
    int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO) of them, drawn at random); those
    with IoU < 0.5 are background and fill the rest, repeated at random when there
    are too few. As in matterport, the background rows are reset through the kept
    background indices (class 0, zero box), so their box and mask targets are zero.

    Args:
        rpn_rois: [num_rois, (y1, x1, y2, x2)] int, in pixels.
        gt_class_ids: [num_gt] int; rows with class <= 0 are ignored.
        gt_boxes: [num_gt, (y1, x1, y2, x2)] int32, in pixels.
        gt_masks: [H, W, num_gt] bool at IMAGE_SHAPE, or
            [MINI_MASK_SHAPE, num_gt] when config.USE_MINI_MASK.
        config: TRAIN_ROIS_PER_IMAGE, ROI_POSITIVE_RATIO, NUM_CLASSES, BBOX_STD_DEV,
            MASK_SHAPE, USE_MINI_MASK, IMAGE_SHAPE.

    Returns:
        rois: [TRAIN_ROIS_PER_IMAGE, (y1, x1, y2, x2)], foreground first.
        class_ids: [TRAIN_ROIS_PER_IMAGE] int, 0 for background.
        bboxes: [TRAIN_ROIS_PER_IMAGE, NUM_CLASSES, (dy, dx, log(dh), log(dw))] float32,
            divided by BBOX_STD_DEV, non-zero only at each foreground ROI's class.
        masks: [TRAIN_ROIS_PER_IMAGE, MASK_SHAPE[0], MASK_SHAPE[1], NUM_CLASSES] float32,
            the GT mask inside the ROI resized bilinearly, at the ROI's class.

    Raises:
        ValueError: no ROIs, no GT instance, dtypes other than integer boxes and bool
            masks, or no background ROI to fill TRAIN_ROIS_PER_IMAGE with.
    """
    rpn_rois = boxes_arg("rpn_rois", rpn_rois)
    gt_boxes = boxes_arg("gt_boxes", gt_boxes)
    gt_class_ids = array_arg("gt_class_ids", gt_class_ids, ndim=1, layout="[num_gt]")
    gt_masks = masks_arg("gt_masks", gt_masks)
    same_count("gt_class_ids", gt_class_ids, "gt_boxes", gt_boxes)
    same_count("gt_class_ids", gt_class_ids, "gt_masks", gt_masks, axis_b=2)
    if rpn_rois.shape[0] == 0:
        raise ValueError("rpn_rois is empty; build_detection_targets needs ROIs")
    for name, array, kinds in (("rpn_rois", rpn_rois, "iu"), ("gt_boxes", gt_boxes, "iu"),
                               ("gt_class_ids", gt_class_ids, "iu"), ("gt_masks", gt_masks, "b")):
        if array.dtype.kind not in kinds:
            expected = "bool" if kinds == "b" else "integer"
            raise ValueError(f"{name} must be {expected}; got dtype {array.dtype}")

    instances = np.flatnonzero(gt_class_ids > 0)
    if len(instances) == 0:
        raise ValueError("gt_class_ids has no instance (class > 0); the image must "
                         "contain instances")
    gt_class_ids = gt_class_ids[instances]
    gt_boxes = gt_boxes[instances]
    gt_masks = gt_masks[:, :, instances]

    overlaps = compute_overlaps(rpn_rois, gt_boxes)
    roi_gt = overlaps.argmax(axis=1)
    roi_iou = overlaps[np.arange(len(rpn_rois)), roi_gt]
    roi_gt_boxes = gt_boxes[roi_gt]
    roi_gt_class_ids = gt_class_ids[roi_gt]

    keep, keep_bg = _sample_rois(roi_iou, config.TRAIN_ROIS_PER_IMAGE,
                                 config.ROI_POSITIVE_RATIO)
    roi_gt_boxes[keep_bg] = 0
    roi_gt_class_ids[keep_bg] = 0

    rois = rpn_rois[keep]
    roi_gt_boxes = roi_gt_boxes[keep]
    roi_gt_class_ids = roi_gt_class_ids[keep]
    roi_gt = roi_gt[keep]

    bboxes = np.zeros((config.TRAIN_ROIS_PER_IMAGE, config.NUM_CLASSES, 4), dtype=np.float32)
    positive = np.flatnonzero(roi_gt_class_ids > 0)
    bboxes[positive, roi_gt_class_ids[positive]] = box_refinement(
        rois[positive], roi_gt_boxes[positive])
    bboxes /= config.BBOX_STD_DEV

    if config.USE_MINI_MASK:
        # Back to image size once per GT instance, not once per ROI.
        gt_masks = expand_mask(gt_boxes, gt_masks, tuple(config.IMAGE_SHAPE[:2]))
    masks = np.zeros((config.TRAIN_ROIS_PER_IMAGE, config.MASK_SHAPE[0],
                      config.MASK_SHAPE[1], config.NUM_CLASSES), dtype=np.float32)
    for i in positive:
        y1, x1, y2, x2 = rois[i].astype(np.int32)
        crop = gt_masks[y1:y2, x1:x2, roi_gt[i]]
        masks[i, :, :, roi_gt_class_ids[i]] = resize(crop, config.MASK_SHAPE)
    return rois, roi_gt_class_ids, bboxes, masks


def _sample_rois(roi_iou: np.ndarray, rois_per_image: int,
                 positive_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the kept ROIs (foreground, then background) and of the background ones.

    Matterport's draws: foreground without replacement, background without
    replacement, then repeats of the kept background when still short.
    """
    fg = np.flatnonzero(roi_iou > 0.5)
    bg = np.flatnonzero(roi_iou < 0.5)
    fg_count = int(rois_per_image * positive_ratio)
    if len(fg) > fg_count:
        fg = np.random.choice(fg, fg_count, replace=False)
    if len(bg) > rois_per_image - len(fg):
        bg = np.random.choice(bg, rois_per_image - len(fg), replace=False)
    keep = np.concatenate([fg, bg])
    short = rois_per_image - len(keep)
    if short > 0:
        if len(bg) == 0:
            raise ValueError(f"only {len(keep)} ROIs for TRAIN_ROIS_PER_IMAGE="
                             f"{rois_per_image} and none with IoU < 0.5 to repeat as "
                             f"background")
        keep = np.concatenate([keep, np.random.choice(bg, short, replace=True)])
    return keep, bg
