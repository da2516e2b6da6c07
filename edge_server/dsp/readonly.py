"""Shared read-only arrays: the empty results most blocks hand out (never written in place)."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

_A = TypeVar("_A", bound=npt.NDArray[Any])


def frozen(a: _A) -> _A:
    """Mark ``a`` read-only and return it."""
    a.flags.writeable = False
    return a


#: empty float32 / float64 / int64 arrays, shape (0,), read-only
EMPTY_F32: npt.NDArray[np.float32] = frozen(np.zeros(0, dtype=np.float32))
EMPTY_F64: npt.NDArray[np.float64] = frozen(np.zeros(0, dtype=np.float64))
EMPTY_I64: npt.NDArray[np.int64] = frozen(np.zeros(0, dtype=np.int64))
