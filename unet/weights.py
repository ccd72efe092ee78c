"""VGG16 ImageNet encoder weights: where keras caches them, and an explicit fetch.

Nothing here downloads on import or while building a model; only
`fetch_imagenet_weights()` (or `python samples/unet.py fetch-weights`) touches the
network.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py

# keras.applications' VGG16 "notop" file: legacy Keras HDF5 weights, layers
# block1_conv1 .. block5_conv3, trained with caffe preprocessing (BGR, mean-subtracted).
IMAGENET_FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                + IMAGENET_FILENAME)
IMAGENET_MD5 = "6d6bbae143d832006294945121d1f1fc"

ENCODER_LAYERS = (
    "block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2",
    "block3_conv1", "block3_conv2", "block3_conv3", "block4_conv1", "block4_conv2",
    "block4_conv3", "block5_conv1", "block5_conv2", "block5_conv3",
)


def keras_cache_dir() -> Path:
    """keras.utils.get_file's models folder: $KERAS_HOME/models or ~/.keras/models."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(home) / "models"


def imagenet_weights_path() -> Path:
    """The cached ImageNet file, or FileNotFoundError saying how to fetch it."""
    path = keras_cache_dir() / IMAGENET_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG16 ImageNet weights are not cached at {path}. Fetch them once with "
            "`python samples/unet.py fetch-weights` (or unet.weights."
            "fetch_imagenet_weights()), or pass encoder_weights=None or a local path.")
    return path


def fetch_imagenet_weights() -> Path:
    """Download the VGG16 notop weights into the keras cache (md5-checked).

    Returns:
        The local path. Raises ConnectionError naming the URL when offline.
    """
    import keras

    try:
        return Path(keras.utils.get_file(IMAGENET_FILENAME, IMAGENET_URL,
                                         cache_subdir="models", file_hash=IMAGENET_MD5))
    except Exception as error:  # get_file wraps network failures in several types
        raise ConnectionError(
            f"could not download VGG16 ImageNet weights from {IMAGENET_URL} ({error}). "
            f"On a machine without network, copy {IMAGENET_FILENAME} into "
            f"{keras_cache_dir()} or pass its path as encoder_weights.") from error


def check_encoder_file(path: str | Path) -> Path:
    """Check that `path` is a legacy Keras HDF5 file holding all 13 VGG16 conv layers.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a legacy layer-by-name HDF5 file, or encoder layers missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file not found: {path}")
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f \
            else f
        if "layer_names" not in group.attrs:
            raise ValueError(f"{path} is not a legacy Keras HDF5 weights file (no "
                             "'layer_names' attribute); save it with the Keras 2 layout")
        names = {n.decode() if isinstance(n, bytes) else str(n)
                 for n in group.attrs["layer_names"]}
    missing = [n for n in ENCODER_LAYERS if n not in names]
    if missing:
        raise ValueError(f"{path} lacks VGG16 encoder layers {missing}")
    return path
