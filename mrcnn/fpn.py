"""Feature Pyramid Network top-down pathway, with matterport's layer names.

Shape glossary (H, W the molded image size; depth = TOP_DOWN_PYRAMID_SIZE):
    P2: [batch, H/4, W/4, depth]   fpn_p2
    P3: [batch, H/8, W/8, depth]   fpn_p3
    P4: [batch, H/16, W/16, depth] fpn_p4
    P5: [batch, H/32, W/32, depth] fpn_p5
    P6: [batch, H/64, W/64, depth] fpn_p6, only feeds the RPN
"""
from __future__ import annotations

from keras import layers

from mrcnn import winograd


def fpn_graph(c2, c3, c4, c5, depth: int = 256) -> list:
    """Build P2..P6 from the backbone's C2..C5.

    Args:
        c2, c3, c4, c5: backbone Keras tensors, strides 4, 8, 16 and 32.
        depth: channels of every pyramid level.

    Returns:
        [P2, P3, P4, P5, P6] Keras tensors; see the glossary.
    """
    p5 = layers.Conv2D(depth, 1, name="fpn_c5p5")(c5)
    p4 = layers.Add(name="fpn_p4add")([
        layers.UpSampling2D(2, interpolation="nearest", name="fpn_p5upsampled")(p5),
        layers.Conv2D(depth, 1, name="fpn_c4p4")(c4)])
    p3 = layers.Add(name="fpn_p3add")([
        layers.UpSampling2D(2, interpolation="nearest", name="fpn_p4upsampled")(p4),
        layers.Conv2D(depth, 1, name="fpn_c3p3")(c3)])
    p2 = layers.Add(name="fpn_p2add")([
        layers.UpSampling2D(2, interpolation="nearest", name="fpn_p3upsampled")(p3),
        layers.Conv2D(depth, 1, name="fpn_c2p2")(c2)])
    # A 3x3 conv on each merged level damps the aliasing of the nearest upsampling.
    p2 = winograd.Conv2D(depth, 3, padding="same", name="fpn_p2")(p2)
    p3 = winograd.Conv2D(depth, 3, padding="same", name="fpn_p3")(p3)
    p4 = winograd.Conv2D(depth, 3, padding="same", name="fpn_p4")(p4)
    p5 = winograd.Conv2D(depth, 3, padding="same", name="fpn_p5")(p5)
    # Subsampling P5 (not a strided conv, as in the FPN paper) gives the anchors of 512.
    p6 = layers.MaxPooling2D(pool_size=1, strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]
