"""Binary-mask input pipeline for the U-Net: resizing, augmentation, batches.

Works on any sequence of samples with `.id`, `.load_image() -> [H, W, 3] uint8` and
`.load_mask() -> [H, W] bool`, the `BinarySample`s of `datasets.binary_samples`.
Sizes are (height, width).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import cv2
import keras
import numpy as np


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize [H, W] or [H, W, C] to `size`; area averaging when shrinking (no aliasing)."""
    h, w = size
    shrinking = h * w < image.shape[0] * image.shape[1]
    resized = cv2.resize(image, (w, h),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    # cv2 drops a trailing channel axis of length 1.
    return resized.reshape(h, w, *image.shape[2:])


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an [H, W] mask to `size` with nearest neighbour, keeping it binary: bool.

    Pixel centres are aligned as in `resize_image`. (cv2's plain INTER_NEAREST samples
    the top-left neighbour, which moves the mask up to one source pixel away from
    its image: on the OpenIST lungs at 320x384 that alone caps IoU at 0.984.)
    """
    h, w = size
    return cv2.resize(np.asarray(mask).astype(np.uint8), (w, h),
                      interpolation=cv2.INTER_NEAREST_EXACT).astype(bool)


def mask_coverage(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fraction of each output pixel that an [H, W] mask covers, [h, w] float32 in [0, 1].

    A soft target: it keeps where a border falls inside a pixel, so a prediction
    resized back to the original size and thresholded at 0.5 can put the border
    where it was (IoU of this round trip on the OpenIST lungs at 320x384: 1.000,
    against 0.994 for nearest neighbour).
    """
    return resize_image(np.asarray(mask).astype(np.float32), size)


MASK_RESIZES = ("area", "nearest")


def to_model_input(image: np.ndarray, channels: int = 3) -> np.ndarray:
    """[H, W, 3] or [H, W] uint8 -> [H, W, channels] float32 in [0, 1].

    channels=1 converts RGB to luminance (X-rays are gray already, so this only
    saves memory); channels=3 repeats a gray image.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 3 and channels == 1:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    elif image.shape[-1] == 1 and channels == 3:
        image = np.repeat(image, 3, axis=-1)
    return image.astype(np.float32) / 255.0


class BinaryMaskSequence(keras.utils.PyDataset):
    """Batches of (image, mask) at a fixed size for `model.fit`.

    Args:
        samples: objects with `.id`, `.load_image()` ([H, W, 3] uint8) and
            `.load_mask()` ([H, W] bool).
        input_size: (height, width) fed to the model.
        batch_size: images per batch; the last batch may be smaller.
        channels: 1 or 3, the model's input channels.
        mask_resize: "area" (default): the target of each pixel is the fraction of
            it the mask covers (`mask_coverage`), so borders keep their sub-pixel
            place; "nearest": binary targets (`resize_mask`).
        augmentation: a callable like `albumentations.Compose`, called as
            `aug(image=uint8 [h, w, 3], mask=uint8 [h, w])` on the resized pair and
            returning a dict with "image" and "mask"; the mask is 255 * the target.
            Use only transforms that move the mask with the image (bilinear mask
            interpolation keeps soft targets soft).
        shuffle: reshuffle the order every epoch (seeded by `seed`).
        cache: keep the resized (pre-augmentation) pairs in memory after first use.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of PyDataset.

    Batches: x [batch, height, width, channels] float32 in [0, 1];
        y [batch, height, width, 1] float32 in [0, 1] ({0, 1} with "nearest").
    """

    def __init__(self, samples: Sequence, input_size: tuple[int, int] = (512, 512),
                 batch_size: int = 4, channels: int = 3, mask_resize: str = "area",
                 augmentation: Callable | None = None, shuffle: bool = True,
                 seed: int = 0, cache: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not samples:
            raise ValueError("BinaryMaskSequence got no samples")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if mask_resize not in MASK_RESIZES:
            raise ValueError(f"mask_resize must be one of {MASK_RESIZES}, got {mask_resize!r}")
        self.samples = list(samples)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.batch_size = batch_size
        self.channels = channels
        self.mask_resize = mask_resize
        self.augmentation = augmentation
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = (self._rng.permutation(len(self.samples)) if shuffle
                       else np.arange(len(self.samples)))
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return math.ceil(len(self.samples) / self.batch_size)

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample `index` resized to input_size: [h, w, 3] uint8 image and [h, w]
        uint8 mask, 255 * the target."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        sample = self.samples[index]
        image, mask = sample.load_image(), sample.load_mask()
        if image.shape[:2] != mask.shape[:2]:
            raise ValueError(f"sample {sample.id}: image {image.shape[:2]} and mask "
                             f"{mask.shape[:2]} differ in size")
        if self.mask_resize == "area":
            target = np.rint(255 * mask_coverage(mask, self.input_size)).astype(np.uint8)
        else:
            target = resize_mask(mask, self.input_size).astype(np.uint8) * 255
        pair = resize_image(image, self.input_size), target
        if self._cache is not None:
            self._cache[index] = pair
        return pair

    def __getitem__(self, batch_index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= batch_index < len(self):
            raise IndexError(f"batch {batch_index} out of range [0, {len(self)})")
        indices = self._order[batch_index * self.batch_size:
                              (batch_index + 1) * self.batch_size]
        images, masks = [], []
        for index in indices:
            image, mask = self.load_pair(int(index))
            if self.augmentation is not None:
                out = self.augmentation(image=image, mask=mask)
                image, mask = out["image"], out["mask"]
                if image.shape[:2] != self.input_size or mask.shape != self.input_size:
                    raise ValueError(f"augmentation changed the size of sample "
                                     f"{self.samples[int(index)].id} to {image.shape[:2]}"
                                     f"; resize back to {self.input_size} in the pipeline")
            images.append(to_model_input(image, self.channels))
            masks.append(mask)
        return (np.stack(images),
                (np.stack(masks).astype(np.float32) / 255.0)[..., None])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(len(self.samples))
