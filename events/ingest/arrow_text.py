"""Text columns as Arrow string arrays: vectorized helpers the other steps share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def _arrow_text(values: pd.Series) -> pa.Array:
    """Text values as an Arrow string array (missing -> null) for vectorized string kernels."""
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):  # mixed objects (JSON): as text
        return pa.array(values.astype("str"), type=pa.string(), from_pandas=True)


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(values.chunks) if isinstance(values, pa.ChunkedArray) else [values]


def _string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets into the data, int64, one more than values; data bytes) of a string array."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.large_string())
    n = len(values)
    buffers = values.buffers()
    if n == 0 or buffers[1] is None:
        return np.zeros(n + 1, np.int64), np.zeros(0, np.uint8)
    width = np.dtype(np.int32 if pa.types.is_string(values.type) else np.int64)
    offsets = np.frombuffer(buffers[1], dtype=width, count=n + 1,
                            offset=values.offset * width.itemsize).astype(np.int64)
    data = (np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None
            else np.zeros(0, np.uint8))
    return offsets, data


# Bytes that can begin or end a value str.strip() changes: ASCII whitespace (Arrow's
# utf8_trim_whitespace also trims the separators 0x1c-0x1f) and any non-ASCII byte.
_EDGE_BYTES = np.zeros(256, dtype=bool)
_EDGE_BYTES[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_EDGE_BYTES[128:] = True


def _strip(values: pd.Series) -> pd.Series:
    """``values.astype("str").str.strip()``, without the copy when no value needs trimming."""
    text = values.astype("str")
    try:
        arrow = pa.array(text.array)
    except (pa.ArrowException, TypeError, ValueError):
        return text.str.strip()
    if not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        return text.str.strip()
    for chunk in _chunks(arrow):
        offsets, data = _string_buffers(chunk)
        starts, ends = offsets[:-1], offsets[1:]
        filled = ends > starts
        if filled.any() and (_EDGE_BYTES[data[starts[filled]]].any()
                             or _EDGE_BYTES[data[ends[filled] - 1]].any()):
            return text.str.strip()
    return text


def _where(flags: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(flags.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
