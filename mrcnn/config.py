"""Mask R-CNN configuration, with matterport's attributes, defaults and derived values.

Use it as matterport's users do: subclass ``Config``, override class attributes, then
instantiate. ``__init__`` computes the derived values (BATCH_SIZE, IMAGE_SHAPE,
IMAGE_META_SIZE) and rejects settings the model cannot be built with.
"""
from __future__ import annotations

import numpy as np

from mrcnn.dtype_policy import POLICIES as DTYPE_POLICIES


class Config:
    """Base configuration. Attribute names, defaults and meanings are matterport's."""

    # Name of the configuration, e.g. "lungs"; names log directories and checkpoints.
    NAME = None

    # Training runs on GPU_COUNT devices with IMAGES_PER_GPU images each.
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2

    # Steps per "epoch" as matterport counts them; not tied to the dataset size.
    STEPS_PER_EPOCH = 1000
    VALIDATION_STEPS = 50

    # "resnet50", "resnet101" or a callable (input_image, stage5, train_bn) -> [C1..C5].
    BACKBONE = "resnet101"
    # Needed only with a callable BACKBONE: image_shape -> [N, (height, width)].
    COMPUTE_BACKBONE_SHAPE = None
    # Strides of the FPN levels P2..P6.
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]

    FPN_CLASSIF_FC_LAYERS_SIZE = 1024
    TOP_DOWN_PYRAMID_SIZE = 256

    # Including the background class.
    NUM_CLASSES = 1

    # Anchor side lengths in pixels, one per pyramid level.
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]
    # 1: an anchor per feature-map cell; 2: every other cell.
    RPN_ANCHOR_STRIDE = 1
    RPN_NMS_THRESHOLD = 0.7
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    # Top anchors (by RPN score) kept before NMS.
    PRE_NMS_LIMIT = 6000
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    # Instance masks stored cropped to their box and resized to MINI_MASK_SHAPE.
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)

    # "none", "square", "pad64" or "crop"; see utils.resize_image.
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    IMAGE_MIN_SCALE = 0
    IMAGE_CHANNEL_COUNT = 3

    # Per-channel mean subtracted from images (RGB).
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])

    TRAIN_ROIS_PER_IMAGE = 200
    ROI_POSITIVE_RATIO = 0.33

    POOL_SIZE = 7
    MASK_POOL_SIZE = 14
    MASK_SHAPE = [28, 28]

    MAX_GT_INSTANCES = 100

    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])

    DETECTION_MAX_INSTANCES = 100
    DETECTION_MIN_CONFIDENCE = 0.7
    DETECTION_NMS_THRESHOLD = 0.3

    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9
    WEIGHT_DECAY = 0.0001

    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.0,
        "rpn_bbox_loss": 1.0,
        "mrcnn_class_loss": 1.0,
        "mrcnn_bbox_loss": 1.0,
        "mrcnn_mask_loss": 1.0,
    }

    # False: train the heads on random ROIs instead of the RPN's proposals.
    USE_RPN_ROIS = True
    # False keeps BatchNorm frozen (inference mode); small batches make its statistics noise.
    TRAIN_BN = False
    GRADIENT_CLIP_NORM = 5.0

    # Not matterport's: the Keras dtype policy the graph is built under. None keeps the
    # global one (keras.config.dtype_policy(), float32 unless changed). "mixed_bfloat16"
    # or "mixed_float16" compute the convolutions in 16 bits; boxes, scores, masks and
    # losses stay float32 and the weights float32, so weight files are unchanged
    # (mixed_float16 training scales the loss). See the README's speed table.
    DTYPE_POLICY = None

    def __init__(self) -> None:
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        if self.IMAGE_RESIZE_MODE == "crop":
            self.IMAGE_SHAPE = np.array(
                [self.IMAGE_MIN_DIM, self.IMAGE_MIN_DIM, self.IMAGE_CHANNEL_COUNT])
        else:
            self.IMAGE_SHAPE = np.array(
                [self.IMAGE_MAX_DIM, self.IMAGE_MAX_DIM, self.IMAGE_CHANNEL_COUNT])
        # image_id, original shape (3), molded shape (3), window (4), scale, active class ids.
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES
        self.validate()

    def validate(self) -> None:
        """Raise ValueError for settings the model cannot be built with."""
        name = type(self).__name__

        def fail(message: str) -> None:
            raise ValueError(f"{name}: {message}")

        if not isinstance(self.NUM_CLASSES, (int, np.integer)) or self.NUM_CLASSES < 1:
            fail(f"NUM_CLASSES must be an integer >= 1 (background included), "
                 f"got {self.NUM_CLASSES!r}")
        for attr in ("GPU_COUNT", "IMAGES_PER_GPU"):
            value = getattr(self, attr)
            if not isinstance(value, (int, np.integer)) or value < 1:
                fail(f"{attr} must be an integer >= 1, got {value!r}")
        if self.IMAGE_RESIZE_MODE not in ("none", "square", "pad64", "crop"):
            fail(f"IMAGE_RESIZE_MODE must be one of none, square, pad64, crop; "
                 f"got {self.IMAGE_RESIZE_MODE!r}")
        if self.IMAGE_RESIZE_MODE in ("square", "pad64") and self.IMAGE_MAX_DIM % 64:
            # Five stride-2 stages then the P6 pool: each level must halve exactly.
            fail(f"IMAGE_MAX_DIM must be divisible by 64 (got {self.IMAGE_MAX_DIM}); "
                 f"try {64 * max(1, round(self.IMAGE_MAX_DIM / 64))}")
        if self.IMAGE_RESIZE_MODE == "crop" and self.IMAGE_MIN_DIM % 64:
            fail(f"IMAGE_MIN_DIM must be divisible by 64 in crop mode "
                 f"(got {self.IMAGE_MIN_DIM})")
        if self.IMAGE_MIN_DIM and self.IMAGE_MAX_DIM and self.IMAGE_MIN_DIM > self.IMAGE_MAX_DIM:
            fail(f"IMAGE_MIN_DIM ({self.IMAGE_MIN_DIM}) is larger than "
                 f"IMAGE_MAX_DIM ({self.IMAGE_MAX_DIM})")
        mean = np.asarray(self.MEAN_PIXEL)
        if mean.ndim != 1 or mean.shape[0] != self.IMAGE_CHANNEL_COUNT:
            fail(f"MEAN_PIXEL has {mean.size} values but IMAGE_CHANNEL_COUNT is "
                 f"{self.IMAGE_CHANNEL_COUNT}; give one mean per channel")
        if not (isinstance(self.BACKBONE, str) or callable(self.BACKBONE)):
            fail(f"BACKBONE must be 'resnet50', 'resnet101' or a callable, "
                 f"got {self.BACKBONE!r}")
        if isinstance(self.BACKBONE, str) and self.BACKBONE not in ("resnet50", "resnet101"):
            fail(f"BACKBONE must be 'resnet50' or 'resnet101', got {self.BACKBONE!r}")
        if callable(self.BACKBONE) and self.COMPUTE_BACKBONE_SHAPE is None:
            fail("a callable BACKBONE needs COMPUTE_BACKBONE_SHAPE too")
        if len(self.RPN_ANCHOR_SCALES) != len(self.BACKBONE_STRIDES):
            fail(f"RPN_ANCHOR_SCALES has {len(self.RPN_ANCHOR_SCALES)} entries but "
                 f"BACKBONE_STRIDES has {len(self.BACKBONE_STRIDES)}: one scale per level")
        if not 0 < self.ROI_POSITIVE_RATIO <= 1:
            fail(f"ROI_POSITIVE_RATIO must be in (0, 1], got {self.ROI_POSITIVE_RATIO}")
        for attr in ("RPN_NMS_THRESHOLD", "DETECTION_NMS_THRESHOLD",
                     "DETECTION_MIN_CONFIDENCE"):
            value = getattr(self, attr)
            if not 0 <= value <= 1:
                fail(f"{attr} must be in [0, 1], got {value}")
        if self.DTYPE_POLICY not in DTYPE_POLICIES:
            fail(f"DTYPE_POLICY must be one of {', '.join(map(str, DTYPE_POLICIES))}; "
                 f"got {self.DTYPE_POLICY!r}")
        unknown = set(self.LOSS_WEIGHTS) - set(Config.LOSS_WEIGHTS)
        if unknown:
            fail(f"LOSS_WEIGHTS has unknown keys {sorted(unknown)}; "
                 f"known: {sorted(Config.LOSS_WEIGHTS)}")

    def to_dict(self) -> dict:
        """Every public, non-callable attribute, as display() shows them."""
        return {a: getattr(self, a) for a in sorted(dir(self))
                if not a.startswith("__") and not callable(getattr(self, a))}

    def display(self) -> None:
        """Print the configuration values."""
        print("\nConfigurations:")
        for key, value in self.to_dict().items():
            print(f"{key:30} {value}")
        print("\n")
