"""A Mask R-CNN small enough to train in seconds on a CPU, and an in-memory dataset.

The backbone is a five-stage conv net whose layers carry matterport's ResNet names
(conv1, res2a_branch2a, bn3a_branch2a, ...), so the train(layers=...) regexes select
the same stages as on a ResNet.
"""
from __future__ import annotations

import numpy as np

from mrcnn.config import Config
from mrcnn.dataset import Dataset
from samples.small_backbone import make_small_backbone, small_backbone_shapes

SIZE = 64


# One block per stage, 8 to 32 channels: trains in seconds.
tiny_backbone = make_small_backbone(stem=8, stages=((16, 2), (16, 2), (32, 2), (32, 2)),
                                    blocks=1)


class TinyConfig(Config):
    NAME = "tiny"
    BACKBONE = staticmethod(tiny_backbone)
    COMPUTE_BACKBONE_SHAPE = staticmethod(small_backbone_shapes)
    NUM_CLASSES = 2
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = SIZE
    IMAGE_MAX_DIM = SIZE
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    PRE_NMS_LIMIT = 128
    POST_NMS_ROIS_TRAINING = 32
    POST_NMS_ROIS_INFERENCE = 32
    TRAIN_ROIS_PER_IMAGE = 16
    MAX_GT_INSTANCES = 4
    DETECTION_MAX_INSTANCES = 8
    DETECTION_MIN_CONFIDENCE = 0.5
    MINI_MASK_SHAPE = (16, 16)
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 64
    STEPS_PER_EPOCH = 2
    VALIDATION_STEPS = 1
    LEARNING_RATE = 0.01


class EllipseDataset(Dataset):
    """Grey images with one or two bright ellipses (class 1); deterministic under `seed`.

    Args:
        count: number of images.
        seed: numpy seed of the shapes.
        empty: indices of images without any instance.
    """

    def __init__(self, count: int = 4, seed: int = 0, empty=()):
        super().__init__()
        self.add_class("shapes", 1, "ellipse")
        rng = np.random.default_rng(seed)
        self.samples = []
        yy, xx = np.mgrid[:SIZE, :SIZE]
        for i in range(count):
            image = np.full((SIZE, SIZE, 3), 30, np.uint8)
            masks = []
            for _ in range(0 if i in empty else int(rng.integers(1, 3))):
                cy, cx = rng.uniform(16, SIZE - 16, 2)
                ry, rx = rng.uniform(6, 12, 2)
                mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
                if any((m & mask).any() for m in masks):
                    continue
                masks.append(mask)
                image[mask] = 220
            masks = np.stack(masks, -1) if masks else np.zeros((SIZE, SIZE, 0), bool)
            self.samples.append((image, masks))
            self.add_image("shapes", i, path=f"memory://ellipse/{i}")
        self.prepare()

    def load_image(self, image_id):
        return self.samples[image_id][0]

    def load_mask(self, image_id):
        masks = self.samples[image_id][1]
        return masks, np.ones(masks.shape[2], np.int32)
