"""Atomic file output: a reader sees the old file or the complete new one, never a part."""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_output(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success flush it to disk and rename it
    over `dest`. On an exception the temporary file is removed and `dest` is untouched.

    The temporary name ends with `dest`'s full name, so writers that choose a format by
    suffix (".h5" vs ".weights.h5", ".png") treat it as they would `dest`.
    """
    dest = Path(dest)
    tmp = dest.with_name(f".partial-{uuid.uuid4().hex[:12]}-{dest.name}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if os.name == "posix":  # make the rename itself durable
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
