"""image_meta in the graph: keras.ops twin of mrcnn.data.parse_image_meta.

Shape glossary:
    image_meta  [batch, IMAGE_META_SIZE] = [image_id, original (H, W, C),
                molded (H, W, C), window (y1, x1, y2, x2) in pixels, scale,
                active_class_ids[NUM_CLASSES]]
"""
from __future__ import annotations

from keras import ops

# Columns before active_class_ids (at least one class follows).
_FIXED_COLUMNS = 12


def parse_image_meta_graph(meta) -> dict:
    """Split image_meta rows into fields, as tensors.

    Args:
        meta: [batch, IMAGE_META_SIZE], any numeric dtype.

    Returns:
        {"image_id": [batch], "original_image_shape": [batch, 3],
         "image_shape": [batch, 3], "window": [batch, (y1, x1, y2, x2)],
         "scale": [batch], "active_class_ids": [batch, NUM_CLASSES]},
        all float32 as in matterport's graph.
    """
    if len(meta.shape) != 2 or (meta.shape[1] is not None
                                and meta.shape[1] <= _FIXED_COLUMNS):
        raise ValueError(f"image_meta must be [batch, IMAGE_META_SIZE > "
                         f"{_FIXED_COLUMNS}]; got shape {tuple(meta.shape)}")
    meta = ops.cast(meta, "float32")
    return {
        "image_id": meta[:, 0],
        "original_image_shape": meta[:, 1:4],
        "image_shape": meta[:, 4:7],
        "window": meta[:, 7:11],
        "scale": meta[:, 11],
        "active_class_ids": meta[:, 12:],
    }
