"""KV pages: the zero-filled KV buffer goes back to the kernel at load and reads as zeros after."""

from __future__ import annotations

import asyncio
import ctypes
import mmap

import numpy as np

from models.catalog import DEFAULT_MODEL
from models.engine import EngineConfig, GenerationParams
from models.engine.kv_pages import (
    PAGE,
    anonymous_mappings,
    kv_cell_bytes,
    longest_run,
    release_zeroed_buffer,
    zero_pages,
)
from models.engine.llama_engine import LlamaEngine
from tests.models.streams import drain

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def _resident(address: int, length: int) -> np.ndarray:
    """Which pages of [address, address + length) are in RAM (mincore)."""
    flags = (ctypes.c_ubyte * (length // PAGE))()
    assert _libc.mincore(address, length, flags) == 0, ctypes.get_errno()
    return np.frombuffer(flags, dtype=np.uint8) & 1 == 1


def _vm_rss() -> int:
    """This process's resident set in bytes."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_longest_run_finds_the_longest_stretch_of_true() -> None:
    """Runs at the edges and in the middle; none at all."""
    flags = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1], dtype=bool)
    assert longest_run(flags) == (3, 3)
    assert longest_run(np.ones(4, dtype=bool)) == (0, 4)
    assert longest_run(np.zeros(4, dtype=bool)) == (0, 0)


def test_the_zeroed_pages_of_a_new_mapping_leave_ram_and_the_data_stays() -> None:
    """Written pages bound the zero run; the run is handed back and still reads zero."""
    before = anonymous_mappings()
    pages = 1024
    buffer = mmap.mmap(-1, pages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    view = np.frombuffer(buffer, dtype=np.uint8)
    try:
        view[:] = 0  # what llama.cpp's clear does: every page resident, all zero
        view[10 * PAGE + 7] = 42
        view[-1] = 7  # the last page too: the run cannot reach into a neighbouring mapping
        address = view.ctypes.data
        assert _resident(address, pages * PAGE).all()

        released = release_zeroed_buffer(before, at_least=1000 * PAGE)

        assert released == 1012 * PAGE  # pages 11..1022
        resident = _resident(address, pages * PAGE)
        assert resident[10] and resident[-1] and not resident[11:-1].any()
        assert view[10 * PAGE + 7] == 42 and view[-1] == 7 and int(view.sum()) == 49
    finally:
        del view
        buffer.close()


def test_unmapped_memory_reads_as_not_zero_without_a_fault() -> None:
    """Pages that cannot be read (here: the unmapped first pages) are never counted as zero."""
    assert zero_pages(PAGE, 4 * PAGE).tolist() == [False, False, False]


def test_nothing_is_released_when_no_new_mapping_is_that_large() -> None:
    """The threshold keeps it to one buffer of the expected size: a smaller run stays."""
    before = anonymous_mappings()
    buffer = mmap.mmap(-1, 8 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        np.frombuffer(buffer, dtype=np.uint8)[:] = 0
        assert release_zeroed_buffer(before, at_least=1 << 30) == 0
    finally:
        buffer.close()


def test_an_engine_holds_its_kv_memory_only_once_cells_are_written() -> None:
    """8 slots x 2,048 f16 cells (360 MiB) cost ~0 RSS at load; a request still answers."""
    config = EngineConfig(parallel=8)
    rss_before = _vm_rss()
    engine = LlamaEngine(DEFAULT_MODEL, config)
    try:
        grown = _vm_rss() - rss_before
        kv_bytes = engine.kv_tokens * kv_cell_bytes(engine._model, "f16", "f16")
        assert kv_bytes == 16_384 * 30 * 2 * 192 * 2  # cells x layers x (K, V) x values x bytes
        assert grown < kv_bytes / 2, (grown, kv_bytes)  # without the hand-back: > kv_bytes

        async def answer() -> str:
            params = GenerationParams(max_tokens=8, temperature=0)
            [stream] = await engine.submit(engine.text_prompt("Once upon a time"), params)
            return (await drain(stream))[0]

        assert asyncio.run(answer()).strip()
    finally:
        engine.close()


def test_without_kv_on_demand_the_whole_cache_is_resident_from_the_start() -> None:
    """--no-kv-on-demand keeps what llama.cpp does: every cell resident at load."""
    rss_before = _vm_rss()
    engine = LlamaEngine(DEFAULT_MODEL, EngineConfig(parallel=8, kv_on_demand=False))
    try:
        kv_bytes = engine.kv_tokens * kv_cell_bytes(engine._model, "f16", "f16")
        assert _vm_rss() - rss_before > kv_bytes
        assert engine.info()["kv_on_demand"] is False
    finally:
        engine.close()
