"""The dataset base class: matterport's ``utils.Dataset``, with its class-map behaviour.

A subclass registers its classes with ``add_class`` and its images with ``add_image``,
overrides ``load_mask`` (and ``load_image`` when the files are not plain images),
then the caller runs ``prepare()`` before use. Internal ids are contiguous integers;
``<source>.<id>`` strings map back to the ids of each source dataset.
"""
from __future__ import annotations

import logging
import os

import numpy as np

logger = logging.getLogger(__name__)


def read_image(path: str) -> np.ndarray:
    """Read an image file as [H, W, 3] uint8 RGB (grayscale is repeated, alpha dropped).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded (names the file).
    """
    import skimage.io

    if not os.path.exists(path):
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        image = skimage.io.imread(path)
    except Exception as exc:  # decoders raise many types; the caller needs the path
        raise ValueError(f"cannot read image {path}: corrupt or unsupported file ({exc})") from exc
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    elif image.ndim != 3:
        raise ValueError(f"image {path} has shape {image.shape}; expected [H, W] or [H, W, C]")
    if image.shape[-1] == 4:
        image = image[..., :3]
    elif image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.dtype != np.uint8:
        # 16-bit PNGs (some X-ray exports) are scaled, not truncated, to 8 bits.
        image = _to_uint8(image)
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale a bool, wide-integer or float image to uint8."""
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.integer):
        peak = int(image.max()) if image.size else 0
        # 10/12/14-bit X-ray data is often stored in 16-bit PNGs: scale by the bit depth
        # the values actually use, or a 12-bit image would come out nearly black.
        bits = 8
        while peak > (1 << bits) - 1:
            bits += 2
        top = (1 << bits) - 1
        return (image.astype(np.float64) * (255.0 / top)).round().astype(np.uint8)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


class Dataset:
    """Base class for dataset classes, as matterport's ``utils.Dataset``.

    Subclass it, add classes and images in a ``load_<name>()`` method, and override
    ``load_mask`` (and ``image_reference``). Call ``prepare()`` before use.
    """

    def __init__(self, class_map=None):
        self._image_ids = []
        self.image_info = []
        # Class 0 is the background, shared by every source.
        self.class_info = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids = {}

    def add_class(self, source: str, class_id: int, class_name: str) -> None:
        if "." in source:
            raise ValueError(f"source name {source!r} must not contain a dot")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return  # already registered
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source: str, image_id, path: str, **kwargs) -> None:
        image_info = {"id": image_id, "source": source, "path": path}
        image_info.update(kwargs)
        self.image_info.append(image_info)

    def image_reference(self, image_id: int) -> str:
        """A link or path that identifies the image to a person; override it."""
        return ""

    def prepare(self, class_map=None) -> None:
        """Build the id tables. Call it after adding classes and images."""

        def clean_name(name: str) -> str:
            # COCO-style names such as "person,people" keep their first part.
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)

        self.class_from_source_map = {
            f"{info['source']}.{info['id']}": class_id
            for info, class_id in zip(self.class_info, self.class_ids)}
        self.image_from_source_map = {
            f"{info['source']}.{info['id']}": image_id
            for info, image_id in zip(self.image_info, self.image_ids)}

        # Sorted, unlike matterport's set(), so that the mapping is reproducible.
        self.sources = sorted({c["source"] for c in self.class_info})
        self.source_class_ids = {
            source: [i for i, info in enumerate(self.class_info)
                     if i == 0 or info["source"] == source]
            for source in self.sources}

    def map_source_class_id(self, source_class_id: str) -> int:
        """'<source>.<class id>' -> internal class id."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id: int, source: str) -> int:
        """Internal class id -> the class id in the source dataset."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError(f"class {class_id} belongs to source {info['source']!r}, "
                             f"not {source!r}")
        return info["id"]

    @property
    def image_ids(self):
        return self._image_ids

    def source_image_link(self, image_id: int) -> str:
        """The path or URL of the image in its source."""
        return self.image_info[image_id]["path"]

    def load_image(self, image_id: int) -> np.ndarray:
        """[H, W, 3] uint8 RGB image."""
        return read_image(self.image_info[image_id]["path"])

    def load_mask(self, image_id: int):
        """Instance masks [H, W, N] bool and class ids [N] int32. Override it.

        The base version returns empty arrays, as matterport's does.
        """
        logger.warning("Dataset.load_mask() is the empty default; override it in %s.",
                       type(self).__name__)
        return np.empty([0, 0, 0]), np.empty([0], np.int32)
