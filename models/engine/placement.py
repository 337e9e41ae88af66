"""Where a waiting request goes: a free slot, the cached cells it starts from, and KV room."""

from __future__ import annotations

from dataclasses import dataclass

from models.engine.prompt_cache import HostPromptCache
from models.engine.slots import Request, Slot

MIN_SHARED_PREFIX = 16  # take another slot's or the host cache's cells only when it saves this many


@dataclass(frozen=True)
class Placement:
    """A free slot for a request and the prefix it starts with.

    `keep` tokens of the slot's own cells stay; or `reused` tokens come from `source` (another
    slot's cells, shared in the unified KV cache) or from host cache entry `host_key`.
    """

    slot: Slot
    keep: int
    reused: int
    source: Slot | None = None
    host_key: int = -1


def choose(
    request: Request,
    slots: list[Slot],
    free: list[Slot],
    host: HostPromptCache | None,
    reuse: bool,
) -> Placement:
    """The free slot that needs the least prefill, and where its prefix comes from."""
    prompt = request.prompt
    last = len(prompt) - 1  # at least one prompt token is decoded for its logits
    slot = max(free, key=lambda s: (common_prefix(s.cached, prompt), -s.released_at))
    if not reuse:
        return Placement(slot, 0, 0)
    keep = min(common_prefix(slot.cached, prompt), last)
    others = [s for s in slots if s is not slot and s.cached]
    source = max(others, key=lambda s: common_prefix(s.cached, prompt), default=None)
    shared = min(common_prefix(source.cached, prompt), last) if source is not None else 0
    key, saved = host.longest(prompt) if host is not None else (-1, 0)
    saved = min(saved, last)
    if source is not None and shared >= max(keep + MIN_SHARED_PREFIX, saved):
        return Placement(slot, keep, shared, source=source)
    if host is not None and saved >= keep + MIN_SHARED_PREFIX:
        return Placement(slot, keep, saved, host_key=key)
    return Placement(slot, keep, keep)


def awaits_prefill(request: Request, slots: list[Slot], host: HostPromptCache | None) -> bool:
    """True when another slot is still prefilling more of this prompt than any cache holds:
    admitted after that prefill, the request shares those cells instead of computing them again."""
    prompt = request.prompt
    prefilling = [s.request.prompt for s in slots if s.request is not None and s.pending]
    if not prefilling:
        return False
    coming = min(max(common_prefix(p, prompt) for p in prefilling), len(prompt) - 1)
    held = max((common_prefix(s.cached, prompt) for s in slots), default=0)
    if coming < held + MIN_SHARED_PREFIX:
        return False
    return host is None or coming >= host.longest(prompt)[1] + MIN_SHARED_PREFIX


def evictions(
    placement: Placement, request: Request, slots: list[Slot], total: int
) -> list[Slot] | None:
    """Idle slots whose cells must go for the request to fit the shared KV cache (least
    recently used first); None when it cannot fit until running requests end.

    A cell shared by several slots counts once; a running request also counts the cells it may
    still need (the prompt left to prefill and every token up to its max_tokens).
    """
    target, source = placement.slot, placement.source
    if source is not None:
        base = source.cells[: placement.reused]
    elif placement.host_key < 0:
        base = target.cells[: placement.keep]
    else:
        base = []  # restored from the host cache into new cells
    fresh = len(request.prompt) - (placement.reused if placement.host_key < 0 else 0)
    needs = sum(s.still_needs() for s in slots) + fresh + request.max_tokens
    if sum(len(s.cells) for s in slots) + needs <= total:
        return []  # fits even counting every shared cell once per slot
    idle = [s for s in slots if s.request is None and s.cells and s is not target]
    idle = sorted((s for s in idle if s is not source), key=lambda s: s.released_at)
    for n in range(len(idle) + 1):
        gone = idle[:n]
        kept = [s.cells for s in slots if s is not target and not any(s is g for g in gone)]
        if len(set(base).union(*kept)) + needs <= total:
            return gone
    return None


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists (bisected with list compares, in C)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    same, differs = 0, n  # a[:same] == b[:same], a[:differs] != b[:differs]
    while differs - same > 1:
        middle = (same + differs) // 2
        if a[same:middle] == b[same:middle]:
            same = middle
        else:
            differs = middle
    return same
