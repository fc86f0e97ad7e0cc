"""Text values (user ids, event names) as integer codes and sort ranks, for sorting and
de-duplicating without comparing strings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_text import _string_buffers

# Text keys up to this many 8-byte words are compared as integers; longer ones by Arrow.
MAX_KEY_WORDS = 8

# From this many values on, factorizing goes bucket by bucket (hash tables that fit in cache).
FACTORIZE_BUCKETS_FROM = 1 << 20


@dataclass(frozen=True)
class _TextCodes:
    """Text values as integers: ``codes`` (one per value, equal codes for equal text),
    ``reps`` (a value of each code) and ``ranks`` (each code's place among the sorted
    distinct values, so sorting by rank is sorting the text as Arrow does, by bytes)."""

    codes: np.ndarray
    reps: np.ndarray
    ranks: np.ndarray


def _text_codes(values: pa.Array) -> _TextCodes:
    """Integer codes and sort ranks of text values (one chunk, no nulls expected).

    Few distinct values (event names): Arrow's dictionary encoding. Many (user ids) of up to
    MAX_KEY_WORDS * 8 bytes: the bytes, zero-padded, as big-endian 64-bit words, so that
    comparing words compares text by bytes as Arrow's sort does (the byte length breaks ties
    when text holds NUL bytes); equal keys are found with a hash table. Anything else, and
    the unlikely case of two different texts hashing alike, goes to Arrow's dictionary."""
    n = len(values)
    if n == 0 or values.null_count:
        return _text_codes_arrow(values)
    sample = values.take(pa.array(np.linspace(0, n - 1, min(n, 4096)).astype(np.int64)))
    if pc.count_distinct(sample).as_py() * 8 <= len(sample):
        return _text_codes_arrow(values)
    offsets, data = _string_buffers(values)
    lengths = np.diff(offsets)
    width = int(lengths.max())
    words = max(1, (width + 7) // 8)
    if words > MAX_KEY_WORDS:
        return _text_codes_arrow(values)
    keys = _big_endian_words(offsets, data, lengths, width, words)
    with_nul = bool((data[offsets[0]:offsets[-1]] == 0).any())
    exact = words == 1 and not with_nul
    if exact:
        hashed = keys[:, 0]
    else:
        hashed = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        for j in range(words):
            hashed = (hashed ^ keys[:, j]) * np.uint64(0xBF58476D1CE4E5B9)
            hashed ^= hashed >> np.uint64(31)
    codes, reps = _factorize_u64(hashed)
    if not exact and not (np.array_equal(keys[reps][codes], keys)  # hashed: equal text?
                          and np.array_equal(lengths[reps][codes], lengths)):
        return _text_codes_arrow(values)
    sort_keys = [keys[reps, j] for j in range(words - 1, -1, -1)]
    if with_nul:
        sort_keys.insert(0, lengths[reps])
    by_text = np.lexsort(sort_keys) if len(sort_keys) > 1 else np.argsort(sort_keys[0])
    return _TextCodes(codes, reps, _inverse(by_text))


def _big_endian_words(offsets: np.ndarray, data: np.ndarray, lengths: np.ndarray,
                      width: int, words: int) -> np.ndarray:
    """(values, words) uint64: each value's bytes zero-padded to 8 * words, read big-endian."""
    n = len(lengths)
    start, stop = int(offsets[0]), int(offsets[-1])
    if (lengths == width).all():
        block = data[start:stop].reshape(n, width)
        if width != 8 * words:
            padded = np.zeros((n, 8 * words), np.uint8)
            padded[:, :width] = block
            block = padded
        return block.view(">u8").astype(np.uint64)
    keys = np.zeros((n, words), np.uint64)
    last = max(len(data) - 1, 0)
    for j in range(width):  # byte j of every value (0 past its end)
        byte = data[np.minimum(offsets[:-1] + j, last)].astype(np.uint64)
        byte[lengths <= j] = 0
        keys[:, j // 8] |= byte << np.uint64(8 * (7 - j % 8))
    return keys


def _factorize_u64(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (equal keys, equal codes) and the first position of each code. Large inputs
    are first split by a hash into buckets whose hash tables stay in cache."""
    n = len(keys)
    if n < FACTORIZE_BUCKETS_FROM:
        codes, _ = pd.factorize(keys)
        codes = codes.astype(np.int64, copy=False)
        return codes, _first_of_each(codes)
    bucket = ((keys * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(56)).astype(np.uint8)
    order = np.argsort(bucket, kind="stable")  # radix sort; each bucket in file order
    bounds = np.zeros(257, np.int64)
    np.cumsum(np.bincount(bucket, minlength=256), out=bounds[1:])
    del bucket
    grouped = keys[order]
    codes = np.empty(n, np.int64)
    reps: list[np.ndarray] = []
    count = 0
    for b in range(256):
        lo, hi = bounds[b], bounds[b + 1]
        if hi > lo:
            local, _ = pd.factorize(grouped[lo:hi])
            firsts = _first_of_each(local)
            codes[order[lo:hi]] = local + count
            reps.append(order[lo + firsts])
            count += len(firsts)
    return codes, np.concatenate(reps)


def _first_of_each(codes: np.ndarray) -> np.ndarray:
    """Where each code first occurs, for codes numbered in order of first appearance
    (0, 1, 2, ...): where the running maximum grows."""
    if len(codes) == 0:
        return np.zeros(0, np.int64)
    top = np.maximum.accumulate(codes)
    grows = np.empty(len(codes), bool)
    grows[0] = True
    grows[1:] = top[1:] > top[:-1]
    return np.flatnonzero(grows)


def _text_codes_arrow(values: pa.Array) -> _TextCodes:
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    codes = _indices(encoded)
    count = len(encoded.dictionary)
    reps = np.empty(count, np.int64)
    reps[codes] = np.arange(len(codes))
    by_text = np.asarray(pc.sort_indices(encoded.dictionary).to_numpy(), dtype=np.int64)
    return _TextCodes(codes, reps, _inverse(by_text))


def _inverse(order: np.ndarray) -> np.ndarray:
    """The inverse of a permutation of 0..n-1: ``out[order[i]] == i``."""
    out = np.empty(len(order), np.int64)
    out[order] = np.arange(len(order))
    return out


def _indices(encoded: pa.DictionaryArray) -> np.ndarray:
    """The codes of a dictionary-encoded array, as int64."""
    return np.asarray(pc.cast(encoded.indices, pa.int64()).to_numpy(), dtype=np.int64)
