"""Installs the `mrcnn` and `unet` packages.

`datasets/` is deliberately not installed: a top-level package of that name would
shadow Hugging Face's `datasets`. Samples, notebooks and tests use it from the
repository root, as matterport's samples did.
"""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.strip() for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="medseg-mrcnn",
    version="0.1.0",
    description="Matterport-compatible Mask R-CNN and a VGG16 U-Net for medical images, "
                "in Keras 3",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mrcnn", "mrcnn.*", "unet", "unet.*"]),
    install_requires=requirements,
    extras_require={
        "jax": ["jax>=0.4.30"],
        "imgaug": ["imgaug>=0.4"],
        "test": ["pytest>=8", "hypothesis>=6", "nbclient>=0.10", "nbformat>=5.9",
                 "ipykernel>=6"],
    },
)
