"""Cheap argument checks for the numpy helpers (they sit on data-loading hot paths).

Each check raises a ValueError naming the argument, what was expected and what
was received, instead of the IndexError or broadcast error numpy would give later.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def array_arg(
    name: str,
    value: Any,
    ndim: int | tuple[int, ...] | None = None,
    last: int | None = None,
    layout: str = "",
) -> np.ndarray:
    """`value` as an ndarray with `ndim` axes (one of, for a tuple) and last axis `last`.

    `layout` is the matterport shape notation quoted in the error, e.g. "[N, (y1, x1, y2, x2)]".
    """
    array = np.asarray(value)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and array.ndim not in allowed:
        raise ValueError(f"{name} must be {layout or f'{ndim}-D'}; got shape {array.shape}")
    if last is not None and (array.ndim == 0 or array.shape[-1] != last):
        raise ValueError(
            f"{name} must be {layout or f'[..., {last}]'} (last axis {last}); got shape {array.shape}"
        )
    if array.dtype == object or array.dtype.kind in "SUV":
        raise ValueError(f"{name} must be numeric; got dtype {array.dtype}")
    return array


def boxes_arg(name: str, value: Any) -> np.ndarray:
    """[N, (y1, x1, y2, x2)] boxes as an ndarray."""
    return array_arg(name, value, ndim=2, last=4, layout="[N, (y1, x1, y2, x2)]")


def pixel_boxes_arg(name: str, value: Any, ndim: int = 2) -> np.ndarray:
    """Integer [N, (y1, x1, y2, x2)] boxes (or one box with ndim=1), used as slice bounds."""
    layout = "[N, (y1, x1, y2, x2)]" if ndim == 2 else "[(y1, x1, y2, x2)]"
    array = array_arg(name, value, ndim=ndim, layout=layout)
    if array.shape[-1] < 4:
        raise ValueError(f"{name} must be {layout}; got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer pixel coordinates; got dtype {array.dtype}")
    return array


def masks_arg(name: str, value: Any) -> np.ndarray:
    """[height, width, N] instance masks as an ndarray."""
    return array_arg(name, value, ndim=3, layout="[height, width, N] (instances last)")


def same_count(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray, axis_b: int = 0) -> None:
    """Raise when a.shape[0] differs from b.shape[axis_b] (one row per instance)."""
    if a.shape[0] != b.shape[axis_b]:
        raise ValueError(
            f"{name_a} and {name_b} must describe the same instances; "
            f"got shapes {a.shape} and {b.shape}"
        )
