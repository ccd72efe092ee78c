"""A small five-stage backbone for CPU demos and tests: `--backbone small`.

A ResNet-50 from random weights needs hours to learn anything and minutes of XLA
compilation per training phase on a CPU; this net (about 60k weights) trains in
seconds per epoch. Its layers carry ResNet's names (conv1, res2a_branch2a,
bn3a_branch2a, ...), so matterport's train(layers="heads" | "3+" | "all") select the
same stages as on a ResNet. It has no pretrained weights: use it with --weights=none.
"""
from __future__ import annotations

import numpy as np
from keras import layers

from mrcnn.backbone import BatchNorm

# (filters, stride) of stages 2..5, after conv1 (stride 2): strides 4, 8, 16, 32.
STAGES = ((32, 2), (48, 2), (64, 2), (96, 2))


def make_small_backbone(stem: int = 16, stages=STAGES, blocks: int = 2):
    """A BACKBONE callable of this shape with other widths or depths (tests use a tinier one).

    Args:
        stem: filters of conv1.
        stages: (filters, stride) of stages 2..5.
        blocks: conv blocks per stage (named a, b, ...; the first carries the stride).
    """

    def backbone(input_image, stage5: bool = True, train_bn: bool = False) -> list:
        """[C1, C2, C3, C4, C5] at strides 2, 4, 8, 16, 32 (matterport's BACKBONE callable).

        Args:
            input_image: [batch, H, W, C] molded images; H and W multiples of 64.
            stage5: accepted for matterport's signature; stage 5 is always built (FPN uses it).
            train_bn: train the BatchNorm layers (else they stay in inference mode).
        """
        x = layers.Conv2D(stem, 3, strides=2, padding="same", name="conv1")(input_image)
        x = BatchNorm(frozen=not train_bn, name="bn_conv1")(x)
        c1 = x = layers.Activation("relu")(x)
        outputs = [c1]
        for stage, (filters, stride) in enumerate(stages, start=2):
            for index in range(blocks):
                block, step = "abcdefgh"[index], stride if index == 0 else 1
                x = layers.Conv2D(filters, 3, strides=step, padding="same",
                                  name=f"res{stage}{block}_branch2a")(x)
                x = BatchNorm(frozen=not train_bn, name=f"bn{stage}{block}_branch2a")(x)
                x = layers.Activation("relu", name=f"res{stage}{block}_out")(x)
            outputs.append(x)
        return outputs

    return backbone


small_backbone = make_small_backbone()


def small_backbone_shapes(image_shape) -> np.ndarray:
    """[5, (height, width)] of the feature maps at strides 4, 8, 16, 32, 64."""
    return np.array([[int(np.ceil(image_shape[0] / s)), int(np.ceil(image_shape[1] / s))]
                     for s in (4, 8, 16, 32, 64)])
