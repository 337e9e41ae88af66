"""Give the kernel back the KV pages llama.cpp zero-fills at creation: resident once written.

llama.cpp clears a new KV buffer (memset 0), which makes every cell of every slot resident. The
pages are handed back with MADV_DONTNEED, after which a private anonymous page reads as zeros
again: the cache holds the same bytes, and a slot's memory is resident once it writes cells.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
from collections.abc import Set

import llama_cpp as llc
import numpy as np

from models.engine.base import KvType
from models.engine.vocab import meta

log = logging.getLogger(__name__)

PAGE = mmap.PAGESIZE
_CHUNK = 16 << 20
_MADV_DONTNEED = 4  # Linux: private anonymous pages read as zeros again on the next touch
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int

# bytes per block and values per block of each KV cell type (ggml's block layouts)
_BLOCKS: dict[str, tuple[int, int]] = {
    "f32": (4, 1),
    "f16": (2, 1),
    "bf16": (2, 1),
    "q8_0": (34, 32),
    "q5_1": (24, 32),
    "q5_0": (22, 32),
    "q4_1": (20, 32),
    "q4_0": (18, 32),
    "iq4_nl": (18, 32),
}


def kv_cell_bytes(model: llc.llama_model_p, type_k: KvType, type_v: KvType) -> int:
    """Bytes one KV cell takes over all layers (keys and values of every KV head)."""
    arch = meta(model, "general.architecture") or ""
    head = llc.llama_model_n_embd(model) // max(1, llc.llama_model_n_head(model))
    k_dim = int(meta(model, f"{arch}.attention.key_length") or head)
    v_dim = int(meta(model, f"{arch}.attention.value_length") or head)
    heads = llc.llama_model_n_head_kv(model)

    def row(kv_type: KvType, values: int) -> int:
        block_bytes, block_values = _BLOCKS[kv_type]
        return values // block_values * block_bytes

    per_layer = row(type_k, heads * k_dim) + row(type_v, heads * v_dim)
    return llc.llama_model_n_layer(model) * per_layer


def anonymous_mappings() -> frozenset[tuple[int, int]]:
    """This process's private writable mappings with no name (mmap'd memory), as (start, end)."""
    ranges = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                if len(fields) == 5 and fields[1] == "rw-p":  # a sixth names a file or [heap]
                    start, end = (int(address, 16) for address in fields[0].split("-"))
                    ranges.add((start, end))
    except OSError:  # not Linux: nothing is handed back
        return frozenset()
    return frozenset(ranges)


def zero_pages(start: int, end: int) -> np.ndarray:
    """Which pages of [start, end) hold only zeros (read via /proc/self/mem, never faulting)."""
    try:
        with open("/proc/self/mem", "rb", buffering=0) as mem:
            return np.concatenate(
                [
                    _zero_pages_of(mem.fileno(), at, min(at + _CHUNK, end))
                    for at in range(start, end, _CHUNK)
                ]
            )
    except (OSError, ValueError):  # not readable here (or an empty range): none counts as zero
        return np.zeros((end - start) // PAGE, dtype=bool)


def _zero_pages_of(fd: int, start: int, end: int) -> np.ndarray:
    """zero_pages() of one chunk; pages that cannot be read count as not zero."""
    try:
        data = os.pread(fd, end - start, start)
    except OSError:
        data = b""
    whole = len(data) // PAGE
    pages = np.frombuffer(data, dtype=np.uint64)[: whole * (PAGE // 8)]
    found = np.logical_not(pages.reshape(whole, PAGE // 8).any(axis=1))
    return np.concatenate((found, np.zeros((end - start) // PAGE - whole, dtype=bool)))


def longest_run(flags: np.ndarray) -> tuple[int, int]:
    """The longest run of True in flags, as (first index, length)."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags, [0])).astype(np.int8)))
    if not len(edges):
        return 0, 0
    starts, ends = edges[0::2], edges[1::2]
    best = int(np.argmax(ends - starts))
    return int(starts[best]), int(ends[best] - starts[best])


def release_zeroed_buffer(before: Set[tuple[int, int]], at_least: int) -> int:
    """Hand back the longest all-zero page run (>= at_least bytes) in mappings new since before."""
    best = (0, 0)
    for start, end in anonymous_mappings() - before:
        if end - start >= at_least:  # only a mapping that can hold the buffer is read
            first, pages = longest_run(zero_pages(start, end))
            if pages * PAGE > best[1]:
                best = (start + first * PAGE, pages * PAGE)
    address, length = best
    if length < at_least:
        log.debug("no zeroed run of %d bytes in the new mappings (longest %d)", at_least, length)
        return 0
    if _libc.madvise(address, length, _MADV_DONTNEED) != 0:
        log.debug("madvise failed: errno %d", ctypes.get_errno())
        return 0
    return length
