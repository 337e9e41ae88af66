"""Turns token bytes into safe text: whole UTF-8 characters, stop strings cut off."""

from __future__ import annotations

import codecs
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class StopTextAssembler(Generic[T]):
    """Accumulates token bytes; releases text that cannot be the start of a stop string.

    Each fed token may carry an entry (its logprobs); an entry is released with the text that
    completes its token's characters, and dropped when a stop string cuts its text off.
    """

    def __init__(self, stop: tuple[str, ...]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = tuple(s for s in stop if s)
        self._held = ""
        self._decoded = 0  # characters decoded so far
        self._released = 0  # characters released so far
        self._entries: deque[tuple[int, int, T]] = deque()  # (start, end, entry)
        self._out: list[T] = []
        self.stopped = False
        self.stopped_by: str | None = None  # the stop string that matched

    def feed(self, data: bytes, entry: T | None = None) -> str:
        """Add one token's bytes (and its entry); return the text that is now safe to emit."""
        if self.stopped:
            return ""
        text = self._decoder.decode(data)
        start = self._decoded
        self._held += text
        self._decoded += len(text)
        if entry is not None:
            self._entries.append((start, self._decoded, entry))
        for stop in self._stop:
            at = self._held.find(stop)
            if at >= 0:
                self.stopped, self.stopped_by = True, stop
                text, self._held = self._held[:at], ""
                self._released += len(text)
                cut = self._released
                self._out.extend(e for s, _, e in self._entries if s < cut)
                self._entries.clear()
                return text
        keep = self._longest_stop_prefix_suffix()
        text = self._held[: len(self._held) - keep]
        self._held = self._held[len(self._held) - keep :]
        self._released += len(text)
        self._release(final=False)
        return text

    def flush(self) -> str:
        """Release everything still held back (generation ended without a stop string)."""
        if self.stopped:
            return ""
        text = self._held + self._decoder.decode(b"", final=True)
        self._held = ""
        self._released += len(text)
        self._release(final=True)
        return text

    def entries(self) -> list[T]:
        """The entries released since the last call, in token order."""
        out, self._out = self._out, []
        return out

    def _release(self, final: bool) -> None:
        """Move entries whose text is all out (an empty-text token waits for the next one)."""
        while self._entries:
            start, end, entry = self._entries[0]
            if not final and (end > self._released or (start == end == self._released)):
                break
            self._out.append(entry)
            self._entries.popleft()

    def _longest_stop_prefix_suffix(self) -> int:
        """Length of the longest tail of the held text that begins some stop string."""
        best = 0
        for stop in self._stop:
            for n in range(min(len(stop) - 1, len(self._held)), best, -1):
                if self._held.endswith(stop[:n]):
                    best = n
                    break
        return best
