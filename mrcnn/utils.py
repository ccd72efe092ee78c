"""Matterport's ``mrcnn.utils``: the Dataset base class and the numpy helpers.

The functions live in small stage modules; this module re-exports them so that
``from mrcnn import utils`` code written for matterport keeps working.
"""
from mrcnn.dataset import Dataset, read_image  # noqa: F401
