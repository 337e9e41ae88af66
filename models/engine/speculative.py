"""Prompt-lookup drafts: propose the tokens that followed the last n-gram's latest earlier match."""

from __future__ import annotations

NGRAM_SIZES = (3, 2)  # longest match first
MAX_PAUSE = 64  # steps without drafting after repeated misses, at most


class Drafter:
    """One sequence's n-gram index over its prompt and accepted output, with an adaptive length.

    The index maps every n-gram whose next token is known to the position of that next token
    (the latest occurrence wins), so a lookup is one dict access per n-gram size. The draft
    length halves after a draft is wholly rejected, becomes one more than the accepted count after
    a partial match and doubles after a full one; after
    a few misses at length 1 the drafter pauses for a number of steps that doubles each time.
    """

    def __init__(self, tokens: list[int], max_draft: int) -> None:
        self.max_draft = max_draft
        self.limit = max_draft
        self._tokens: list[int] = []
        self._index: dict[tuple[int, ...], int] = {}
        self._misses = 0
        self._pause = 0
        self._paused_for = 0
        self.extend(tokens)

    def extend(self, tokens: list[int]) -> None:
        """Append tokens of the sequence (prompt, then each accepted token)."""
        seq = self._tokens
        index = self._index
        for token in tokens:
            p = len(seq)  # position of the new token: every n-gram ending just before it
            for n in NGRAM_SIZES:
                if p >= n:
                    index[tuple(seq[p - n : p])] = p
            seq.append(token)

    def draft(self, room: int) -> list[int]:
        """Up to min(limit, room) tokens that followed the latest earlier match of the suffix."""
        if self._pause > 0:
            self._pause -= 1
            return []
        size = min(self.limit, room)
        if size <= 0:
            return []
        seq = self._tokens
        for n in NGRAM_SIZES:
            if len(seq) <= n:
                continue
            at = self._index.get(tuple(seq[-n:]))
            if at is not None:
                return seq[at : at + size]
        return []

    def update(self, drafted: int, accepted: int) -> None:
        """Adapt the draft length to how much of the last draft the model accepted."""
        if drafted == 0:
            return
        if accepted == 0:
            self._misses += 1
            self.limit = max(1, self.limit // 2)
            if self.limit == 1 and self._misses >= 3:
                self._paused_for = min(MAX_PAUSE, max(4, 2 * self._paused_for))
                self._pause = self._paused_for
                self._misses = 0
            return
        self._misses = 0
        self._paused_for = 0
        if accepted == drafted:
            self.limit = min(self.max_draft, self.limit * 2)
        else:  # verifying rows costs: draft about as many as the model took last time
            self.limit = min(self.max_draft, accepted + 1)


def draft_room(generating: int, prefilling: bool, step_rows: int) -> int:
    """Rows a decode step may give to drafts: up to step_rows in all, none while prefilling.

    On a CPU a step's cost grows with its rows (measured here: 1/2/4/8 rows 8.3/12.9/19.5/38.9 ms),
    so past a few rows a draft costs about what it could save, and a prefill chunk already makes
    the step large.
    """
    return 0 if prefilling else max(0, step_rows - generating)
