"""Dataset adapters: on-disk formats -> Mask R-CNN datasets and U-Net samples.

Not an installed package (a top-level ``datasets`` would shadow Hugging Face's): use it
from the repository root, as the samples and tests do.

    from datasets.lungs import LungsDataset       # Mask R-CNN, matterport style
    train = LungsDataset(); train.load_lungs(root, "train"); train.prepare()

    from datasets import binary_samples            # U-Net: same files, same split
    samples = binary_samples("lungs", root, "train")
    image, mask = samples[0].load_image(), samples[0].load_mask()
"""
from __future__ import annotations

from datasets.samples import BinarySample

ADAPTERS = ("lungs", "isic", "siim")


def binary_samples(name: str, root: str, subset: str = "train",
                   **options) -> list[BinarySample]:
    """(image, binary mask) samples of one dataset subset, for the U-Net.

    Args:
        name: "lungs", "isic" or "siim".
        root: the dataset folder.
        subset: "train", "val", "all" (and "test" for ISIC).
        **options: passed to the adapter's loader (load_lungs, load_isic, load_siim).

    Returns:
        One BinarySample per image; `load_mask()` is the union of its instances.
    """
    if name == "lungs":
        from datasets import lungs as adapter
    elif name == "isic":
        from datasets import isic as adapter
    elif name == "siim":
        from datasets import siim as adapter
    else:
        raise ValueError(f"unknown dataset {name!r}; expected one of {ADAPTERS}")
    return adapter.binary_samples(root, subset, **options)


__all__ = ["ADAPTERS", "BinarySample", "binary_samples"]
