"""A host-RAM cache of sequences' KV state, LRU within a byte budget, found by token prefix."""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from dataclasses import dataclass

import llama_cpp as llc
import numpy as np

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Saved:
    """One sequence's tokens and the llama.cpp state bytes of exactly those cells."""

    tokens: np.ndarray
    data: ctypes.Array[ctypes.c_uint8]

    @property
    def size(self) -> int:
        return len(self.data)


class HostPromptCache:
    """Keeps KV state of sequences that leave their slot, to restore a prefix into any slot.

    Entries are whole sequences (a finished prompt and its answer). A lookup finds the entry
    sharing the longest prefix with a new prompt; restoring it into a slot and dropping the
    cells past that prefix gives the slot those tokens without prefilling them.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.used_bytes = 0
        self._entries: OrderedDict[int, _Saved] = OrderedDict()
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    def longest(self, prompt: list[int]) -> tuple[int, int]:
        """(key, shared prefix length) of the best entry for `prompt`; (-1, 0) if none."""
        if not self._entries or not prompt:
            return -1, 0
        wanted = np.asarray(prompt, dtype=np.int32)
        best, best_n = -1, 0
        for key, saved in self._entries.items():
            n = _shared(saved.tokens, wanted)
            if n > best_n:
                best, best_n = key, n
        return best, best_n

    def save(self, ctx: llc.llama_context_p, seq_id: int, tokens: list[int]) -> bool:
        """Copy a sequence's state into the cache (evicting the least recently used)."""
        size = llc.llama_state_seq_get_size(ctx, seq_id)
        if size == 0 or size > self.limit_bytes:
            return False
        wanted = np.asarray(tokens, dtype=np.int32)
        for key, saved in list(self._entries.items()):  # what this one supersedes goes
            if _shared(saved.tokens, wanted) == len(saved.tokens):
                self._drop(key)
        while self.used_bytes + size > self.limit_bytes and self._entries:
            self._drop(next(iter(self._entries)))
        data = (ctypes.c_uint8 * size)()
        written = llc.llama_state_seq_get_data(ctx, data, size, seq_id)
        if written == 0:
            return False
        self._entries[self._next] = _Saved(wanted, data)
        self._next += 1
        self.used_bytes += size
        return True

    def contains_prefix(self, tokens: list[int]) -> bool:
        """True when some entry already holds all of `tokens` as its prefix."""
        wanted = np.asarray(tokens, dtype=np.int32)
        return any(
            len(s.tokens) >= len(wanted) and _shared(s.tokens, wanted) == len(wanted)
            for s in self._entries.values()
        )

    def restore(self, ctx: llc.llama_context_p, key: int, seq_id: int) -> list[int] | None:
        """Load an entry into a (cleared) sequence; its tokens, or None if llama.cpp refused."""
        saved = self._entries[key]
        self._entries.move_to_end(key)
        if llc.llama_state_seq_set_data(ctx, saved.data, saved.size, seq_id) == 0:
            log.warning("llama.cpp refused a cached prompt state; dropping it")
            self._drop(key)
            return None
        return [int(t) for t in saved.tokens]

    def _drop(self, key: int) -> None:
        saved = self._entries.pop(key)
        self.used_bytes -= saved.size


def _shared(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the common prefix of two token arrays."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n
