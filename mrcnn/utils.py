"""Matterport's ``mrcnn.utils``: the Dataset base class and the numpy helpers.

The functions live in small stage modules; this module re-exports them so that
``from mrcnn import utils`` code written for matterport keeps working.
"""
from mrcnn.anchors import generate_anchors, generate_pyramid_anchors  # noqa: F401
from mrcnn.boxes import (  # noqa: F401
    apply_box_deltas,
    box_refinement,
    compute_iou,
    compute_overlaps,
    denorm_boxes,
    extract_bboxes,
    non_max_suppression,
    norm_boxes,
    trim_zeros,
)
from mrcnn.dataset import Dataset, read_image  # noqa: F401
from mrcnn.image import resize, resize_image  # noqa: F401
from mrcnn.masks import (  # noqa: F401
    compute_overlaps_masks,
    expand_mask,
    minimize_mask,
    resize_mask,
    unmold_mask,
)
from mrcnn.metrics import compute_ap, compute_ap_range, compute_matches, compute_recall  # noqa: F401
from mrcnn.weights import COCO_MODEL_URL, download_trained_weights  # noqa: F401
