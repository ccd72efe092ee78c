"""(image, binary mask) samples for the U-Net, read through a Mask R-CNN adapter.

The U-Net and Mask R-CNN see the same files, the same split and the same mask rules
because a BinarySample only delegates to the adapter's ``load_image`` / ``load_mask``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mrcnn.dataset import Dataset


@dataclass(frozen=True)
class BinarySample:
    """One image and its binary mask (the union of its instances).

    Attributes:
        id: the dataset's own image id (SIIM ImageId, ISIC_0000000, CHNCXR_0001_0).
        path: the image file.
    """

    id: str
    path: str
    dataset: Dataset = field(repr=False, compare=False)
    index: int = field(repr=False, compare=False)

    def load_image(self) -> np.ndarray:
        """[H, W, 3] uint8 image."""
        return self.dataset.load_image(self.index)

    def load_mask(self) -> np.ndarray:
        """[H, W] bool; all False for an image without instances (SIIM "-1")."""
        masks, _ = self.dataset.load_mask(self.index)
        return masks.any(axis=-1)


def samples_from_dataset(dataset: Dataset) -> list[BinarySample]:
    """One BinarySample per image of a loaded adapter, in image_info order."""
    return [BinarySample(id=str(info["id"]), path=info["path"], dataset=dataset, index=i)
            for i, info in enumerate(dataset.image_info)]
