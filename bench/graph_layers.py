"""Time the weightless graph layers, compiled, at matterport's sizes; prints JSON.

    KERAS_BACKEND=jax python bench/graph_layers.py [--batch 1] [--repeat 5] [--coco]

Default sizes: the R50 256x256 config (16,368 anchors, 6,000 pre-NMS, 1,000
proposals, 100 detections, 2 classes); --coco: 1024x1024, 261,888 anchors,
81 classes. Each figure is the best of --repeat runs of an XLA-compiled call
(tf.function(jit_compile=True) or jax.jit), in milliseconds, after one warm-up
call that also compiles. It also times the alternatives: NMS compiled and
eager (eager TF runs TF's kernel), TF's NMS kernel under XLA, and ROIAlign by
one multi-level gather vs four full crops selected by level.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import timing  # noqa: E402
from mrcnn import ops as mrcnn_ops  # noqa: E402
from mrcnn.detection import DetectionLayer  # noqa: E402
from mrcnn.proposals import ProposalLayer  # noqa: E402
from mrcnn.roi_align import PyramidROIAlign, roi_levels_graph  # noqa: E402


def _best_ms(fn, args, repeat: int) -> float:
    step = timing.compiled(fn)
    return timing.best_ms(lambda: timing.to_host(step(*args)), repeat)


def _best_eager_ms(fn, repeat: int) -> float:
    return timing.best_ms(lambda: timing.to_host(fn()), repeat)


def _boxes(rng, shape, min_size=0.01, max_size=0.4):
    centres = rng.uniform(0, 1, shape + (2,))
    sizes = rng.uniform(min_size, max_size, shape + (2,))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)


def _four_level_crops(boxes, meta, maps, pool):
    """The rejected ROIAlign: crop every box from every level, keep its own."""
    image_shape = meta[0, 4:7]
    levels = roi_levels_graph(boxes, image_shape)
    batch, count = boxes.shape[0], boxes.shape[1]
    flat = keras.ops.reshape(boxes, (-1, 4))
    indices = keras.ops.repeat(keras.ops.arange(batch, dtype="int32"), count)
    out = 0.0
    for level, fmap in zip(range(2, 6), maps):
        crops = mrcnn_ops.crop_and_resize(fmap, flat, indices, (pool, pool))
        crops = keras.ops.reshape(crops, (batch, count, pool, pool, -1))
        out = keras.ops.where((levels == level)[..., None, None, None], crops, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--coco", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    size, num_anchors, classes = (1024, 261888, 81) if args.coco else (256, 16368, 2)
    batch, rois, detections, channels = args.batch, 1000, 100, 256

    fg = rng.uniform(0, 1, (batch, num_anchors)).astype(np.float32)
    rpn_probs = np.stack([1 - fg, fg], -1)
    rpn_bbox = rng.normal(0, 1, (batch, num_anchors, 4)).astype(np.float32)
    anchors = _boxes(rng, (batch, num_anchors), 0.01, 0.5)
    meta = np.array([[0, size, size, 3, size, size, 3, 0, 0, size, size, 1]
                     + [1] * classes] * batch, np.float32)
    maps = [rng.normal(size=(batch, size // s, size // s, channels)).astype(np.float32)
            for s in (4, 8, 16, 32)]
    proposals = _boxes(rng, (batch, rois))
    logits = rng.normal(0, 3, (batch, rois, classes))
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    deltas = rng.normal(0, 1, (batch, rois, classes, 4)).astype(np.float32)
    nms_boxes = _boxes(rng, (batch, 6000))
    nms_scores = rng.uniform(0, 1, (batch, 6000)).astype(np.float32)

    proposal_layer = ProposalLayer(1000, 0.7, 6000, [0.1, 0.1, 0.2, 0.2])
    roi_align = PyramidROIAlign((7, 7))
    detection_layer = DetectionLayer(100, 0.7, 0.3, [0.1, 0.1, 0.2, 0.2])
    repeat = args.repeat
    results = {
        "ProposalLayer": _best_ms(lambda *x: proposal_layer(list(x)),
                                  (rpn_probs, rpn_bbox, anchors), repeat),
        "PyramidROIAlign_7x7_gather": _best_ms(lambda *x: roi_align(list(x)),
                                               (proposals, meta, *maps), repeat),
        "PyramidROIAlign_7x7_four_levels_where": _best_ms(
            lambda b, m, *f: _four_level_crops(b, m, f, 7), (proposals, meta, *maps), repeat),
        "DetectionLayer": _best_ms(lambda *x: detection_layer(list(x)),
                                   (proposals, probs, deltas, meta), repeat),
        "nms_6000_to_1000_compiled": _best_ms(
            lambda b, s: mrcnn_ops.non_max_suppression_padded(b, s, 1000, 0.7),
            (nms_boxes, nms_scores), repeat),
        "nms_6000_to_1000_eager": _best_eager_ms(
            lambda: mrcnn_ops.non_max_suppression_padded(nms_boxes, nms_scores, 1000, 0.7),
            repeat),
    }
    if keras.backend.backend() == "tensorflow":
        # The TF kernel's XLA lowering, which the dispatcher avoids in graphs.
        results["nms_6000_to_1000_tf_kernel_compiled"] = _best_ms(
            lambda b, s: mrcnn_ops._non_max_suppression_padded_tf(b, s, 1000, 0.7,
                                                                  float("-inf")),
            (nms_boxes, nms_scores), repeat)
    print(json.dumps({
        "backend": keras.backend.backend(),
        "device": platform.processor() or platform.machine(),
        "image_size": size, "batch": batch, "anchors": num_anchors, "classes": classes,
        "unit": "ms, best of %d" % repeat,
        "results": results,
    }, indent=1))


if __name__ == "__main__":
    main()
