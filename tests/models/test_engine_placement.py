"""Placement in the unified KV cache: which slot, which cached prefix, which idle cells go."""

from __future__ import annotations

from typing import Any, cast

from models.engine.base import GenerationParams
from models.engine.placement import (
    MIN_SHARED_PREFIX,
    Placement,
    awaits_prefill,
    choose,
    common_prefix,
    evictions,
)
from models.engine.slots import Request, Slot


def _request(prompt: list[int], max_tokens: int = 10) -> Request:
    none = cast(Any, None)  # placement never samples nor emits
    return Request(prompt, GenerationParams(), max_tokens, sampler=none, loop=none)


def _slot(seq_id: int, tokens: list[int], cells: list[int], released_at: float = 0.0) -> Slot:
    slot = Slot(seq_id=seq_id, released_at=released_at)
    slot.hold(list(tokens), list(cells))
    return slot


def test_a_free_slot_keeps_its_own_prefix() -> None:
    """The free slot whose cache starts like the prompt is chosen, and keeps that prefix."""
    prompt = list(range(40))
    plain, warm = _slot(0, [], []), _slot(1, list(range(30)), list(range(30)))
    placement = choose(_request(prompt), [plain, warm], [plain, warm], None, reuse=True)
    assert (placement.slot, placement.keep, placement.reused) == (warm, 30, 30)
    assert placement.source is None


def test_a_longer_prefix_in_another_slot_is_shared() -> None:
    """A busy slot holding more of the prompt lends its cells; a short gain is not worth it."""
    prompt = list(range(100))
    free = _slot(0, [], [])
    busy = _slot(1, [*range(90), 999], list(range(500, 591)))
    busy.request = _request([1])
    placement = choose(_request(prompt), [free, busy], [free], None, reuse=True)
    assert (placement.source, placement.reused) == (busy, 90)
    near = _slot(1, list(range(MIN_SHARED_PREFIX - 1)), list(range(MIN_SHARED_PREFIX - 1)))
    placement = choose(_request(prompt), [free, near], [free], None, reuse=True)
    assert placement.source is None and placement.reused == 0


def test_no_reuse_means_a_cold_start() -> None:
    """With the prefix cache off nothing is kept or shared."""
    warm = _slot(0, list(range(30)), list(range(30)))
    placement = choose(_request(list(range(40))), [warm], [warm], None, reuse=False)
    assert (placement.keep, placement.reused, placement.source) == (0, 0, None)


def test_idle_cells_make_way_least_recently_used_first() -> None:
    """To fit, the oldest idle slot's cells go first; shared cells count once."""
    old, recent = (
        _slot(1, [7] * 40, list(range(40)), 1.0),
        _slot(2, [8] * 40, list(range(40, 80)), 2.0),
    )
    target = _slot(0, [], [])
    slots = [target, old, recent]
    request = _request(list(range(30)), max_tokens=20)  # needs 50 cells
    assert evictions(Placement(target, 0, 0), request, slots, total=130) == []
    assert evictions(Placement(target, 0, 0), request, slots, total=100) == [old]
    assert evictions(Placement(target, 0, 0), request, slots, total=50) == [old, recent]
    twin = _slot(2, [7] * 40, list(range(40)), 2.0)  # the same cells as `old`
    assert evictions(Placement(target, 0, 0), request, [target, old, twin], total=90) == []


def test_running_requests_reserve_what_they_may_still_need() -> None:
    """A busy slot counts its cells plus its max_tokens left; beyond the total the request waits."""
    busy = _slot(1, [5] * 40, list(range(40)))
    busy.request = _request([5] * 40, max_tokens=50)
    busy.generated = 10  # 40 more may come
    target = _slot(0, [], [])
    request = _request(list(range(30)), max_tokens=20)
    assert evictions(Placement(target, 0, 0), request, [target, busy], total=130) == []
    assert evictions(Placement(target, 0, 0), request, [target, busy], total=129) is None


def test_a_shared_source_is_never_evicted() -> None:
    """The idle slot lending its prefix stays; its cells count once for both."""
    source = _slot(1, list(range(60)), list(range(60)), 1.0)
    target = _slot(0, [], [])
    request = _request(list(range(80)), max_tokens=10)
    placement = Placement(target, 0, 60, source=source)
    assert evictions(placement, request, [target, source], total=90) == []
    assert evictions(placement, request, [target, source], total=89) is None


def test_a_prompt_another_slot_is_prefilling_waits_for_those_cells() -> None:
    """It waits while the prefilling slot will hold more of it than any cache does now."""
    prompt = list(range(100))
    filling, idle = _slot(0, list(range(20)), list(range(20))), _slot(1, [], [])
    filling.request, filling.pending = _request([*range(90), 7]), [*range(20, 90), 7]
    assert awaits_prefill(_request(prompt), [filling, idle], None)
    idle.hold(list(range(80)), list(range(300, 380)))  # 10 more tokens: not worth a wait
    assert not awaits_prefill(_request(prompt), [filling, idle], None)
    filling.pending = []  # its prefill is done: the cells are there to share now
    assert not awaits_prefill(_request(prompt), [filling, _slot(1, [], [])], None)
    other = _request([5, *range(1, 100)])  # differs from the first token on
    filling.pending = [7]
    assert not awaits_prefill(other, [filling, _slot(1, [], [])], None)


def test_common_prefix_at_every_length() -> None:
    """The bisected prefix length matches a token-by-token walk, whichever list is longer."""
    base = list(range(300))
    for n in (0, 1, 2, 31, 150, 299, 300):
        other = [*base[:n], -1, *base[n + 1 :]] if n < 300 else [*base, 5]
        assert common_prefix(base, other) == common_prefix(other, base) == n
    assert common_prefix([], base) == 0 and common_prefix(base[:40], base) == 40
