"""In-memory binary samples for the U-Net tests (the on-disk adapters are tested in
tests/datasets; here only the sample interface matters)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass
class ArraySample:
    """The BinarySample interface over arrays: .id, .load_image(), .load_mask()."""

    id: str
    image: np.ndarray
    mask: np.ndarray

    def load_image(self) -> np.ndarray:
        return self.image

    def load_mask(self) -> np.ndarray:
        return self.mask


def lung_like(size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A chest-X-ray-like pair: two dark ellipses (lungs) on a bright noisy body.

    Returns ([H, W, 3] uint8, [H, W] bool).
    """
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), bool)
    cy = h * rng.uniform(0.45, 0.55)
    ry, rx = h * rng.uniform(0.25, 0.32), w * rng.uniform(0.13, 0.18)
    for cx in (w * rng.uniform(0.27, 0.33), w * rng.uniform(0.67, 0.73)):
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    gray = np.where(mask, 70.0, 170.0) + rng.normal(0, 20, (h, w))
    image = np.clip(gray, 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=-1), mask


@pytest.fixture
def lung_samples():
    """Factory: lung_samples(n, size=(64, 64), seed=0) -> list of ArraySample."""

    def make(n: int, size: tuple[int, int] = (64, 64), seed: int = 0) -> list[ArraySample]:
        rng = np.random.default_rng(seed)
        return [ArraySample(f"lung{i:03d}", *lung_like(size, rng)) for i in range(n)]

    return make
