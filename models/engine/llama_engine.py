"""Continuous-batching LLM engine on llama-cpp-python's low-level API."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

import llama_cpp as llc
import numpy as np

from models.catalog import ModelSpec
from models.engine.base import (
    EngineConfig,
    EngineStats,
    Finish,
    FinishReason,
    GenerationParams,
    Piece,
)
from models.engine.kv_pages import (
    PAGE,
    anonymous_mappings,
    kv_cell_bytes,
    release_zeroed_buffer,
)
from models.engine.logprobs import check_top, token_logprob
from models.engine.placement import MIN_SHARED_PREFIX, Placement, awaits_prefill, choose, evictions
from models.engine.prompt_cache import HostPromptCache
from models.engine.sampling import Sampler
from models.engine.slots import Entry, GenerationStream, Outbox, Request, Slot
from models.engine.speculative import Drafter, draft_room
from models.engine.text import StopTextAssembler
from models.engine.vocab import Vocab
from models.errors import (
    ContextLengthExceeded,
    EngineFailure,
    EngineUnavailable,
    InvalidRequest,
    QueueFull,
)

log = logging.getLogger(__name__)
_llama_log = logging.getLogger("llama.cpp")
_GGML_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml: 1 debug, 2 info, 5 continued

DEFAULT_CELLS_PER_SLOT = 2048  # KV cells per slot when --ctx-size is not given
FLASH_ATTN = {
    "auto": llc.LLAMA_FLASH_ATTN_TYPE_AUTO,
    "on": llc.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    "off": llc.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}

_backend_once = threading.Lock()
_backend_ready = False


@llc.llama_log_callback
def _forward_llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """Send llama.cpp's own log lines to Python logging instead of stderr."""
    message = text.decode(errors="replace").rstrip()
    if message:
        _llama_log.log(_GGML_LEVELS.get(level, logging.DEBUG), "%s", message)


def _init_backend() -> None:
    """Initialise llama.cpp's backends and its logging once per process."""
    global _backend_ready
    with _backend_once:
        if not _backend_ready:
            llc.llama_log_set(_forward_llama_log, ctypes.c_void_p(0))
            llc.llama_backend_init()
            _backend_ready = True


class LlamaEngine:
    """Loads one GGUF and decodes many requests together in one worker thread."""

    def __init__(self, spec: ModelSpec, config: EngineConfig) -> None:
        _init_backend()
        self.model_id = spec.id
        self.spec = spec
        self.config = config
        self.path = spec.gguf_path()
        self.file_sha256 = _sha256(self.path)  # here, in the load thread, not on the event loop
        self._threads = config.n_threads or max(1, os.cpu_count() or 1)
        mparams = llc.llama_model_default_params()
        mparams.n_gpu_layers = config.n_gpu_layers
        self._model = llc.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self._model:
            raise EngineFailure(f"llama.cpp could not load {self.path}")
        self.vocab = Vocab(self._model, spec)
        self._vocab = self.vocab.vocab
        self._n_vocab = self.vocab.n_vocab
        self._piece = self.vocab.piece
        n_ctx_train = llc.llama_model_n_ctx_train(self._model)
        cparams = llc.llama_context_default_params()
        cparams.n_ctx = config.ctx_size or DEFAULT_CELLS_PER_SLOT * config.parallel
        cparams.n_batch = cparams.n_ubatch = config.n_batch
        cparams.n_seq_max = config.parallel
        cparams.n_threads = cparams.n_threads_batch = self._threads
        # unified: any slot may fill the cache, but every decode attends over all used cells
        cparams.kv_unified = config.kv_unified
        cparams.flash_attn_type = FLASH_ATTN[config.flash_attn]
        cparams.type_k = getattr(llc, f"GGML_TYPE_{config.cache_type_k.upper()}")
        cparams.type_v = getattr(llc, f"GGML_TYPE_{config.cache_type_v.upper()}")
        cparams.no_perf = True
        mapped_before = anonymous_mappings() if config.kv_on_demand else frozenset()
        self._ctx = llc.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            llc.llama_model_free(self._model)
            quantised_v = config.cache_type_v not in ("f32", "f16", "bf16")
            hint = "; a quantised V cache needs flash attention on" if quantised_v else ""
            raise EngineFailure(
                f"llama.cpp could not create a context for {self.path} ({cparams.n_ctx} KV "
                f"cells, K {config.cache_type_k}, V {config.cache_type_v}, flash attention "
                f"{config.flash_attn}{hint}; see the log above)"
            )
        self.kv_tokens = llc.llama_n_ctx(self._ctx)
        if config.kv_on_demand:  # llama.cpp zero-filled the KV buffer: give those pages back
            cell_bytes = kv_cell_bytes(self._model, config.cache_type_k, config.cache_type_v)
            kv_bytes = cell_bytes * self.kv_tokens
            released = release_zeroed_buffer(mapped_before, at_least=kv_bytes - 2 * PAGE)
            log.debug("KV cache %d bytes, %d zero-filled bytes handed back", kv_bytes, released)
        self._stream_cells = llc.llama_n_ctx_seq(self._ctx)  # one slot's cells when split
        per_slot = self.kv_tokens if config.kv_unified else self._stream_cells
        self.n_ctx = min(spec.n_ctx or config.n_ctx or per_slot, per_slot, n_ctx_train)
        self._cell_ids = itertools.count()
        self._memory = llc.llama_get_memory(self._ctx)
        self._batch = llc.llama_batch_init(config.n_batch, 0, 1)
        self._slots = [Slot(seq_id=i) for i in range(config.parallel)]
        cache_bytes = config.host_cache_mib << 20
        self._host = HostPromptCache(cache_bytes) if cache_bytes and config.prefix_cache else None
        self._incoming: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._waiting: deque[Request] = deque()
        self._outbox = Outbox()
        self._lock = threading.Lock()
        self._n_waiting = 0
        self._stats = EngineStats(kv_cells_total=self.kv_tokens)
        self._stopping = False
        self._progress_at = time.monotonic()
        self._worker = threading.Thread(target=self._run, name=f"engine-{spec.id}", daemon=True)
        self._worker.start()
        log.info(
            "loaded %s from %s (context up to %d per request, %d KV cells (K %s, V %s) for %d "
            "slots, %d threads)",
            spec.id,
            self.path,
            self.n_ctx,
            self.kv_tokens,
            config.cache_type_k,
            config.cache_type_v,
            config.parallel,
            self._threads,
        )

    # ---- facts -------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Static facts about the loaded model."""
        desc = ctypes.create_string_buffer(256)
        llc.llama_model_desc(self._model, desc, len(desc))
        return {
            "id": self.model_id,
            "aliases": list(self.spec.aliases),
            "file": str(self.path),
            "file_name": self.path.name,
            "file_size": self.path.stat().st_size,
            "file_sha256": self.file_sha256,
            "description": desc.value.decode(errors="replace"),
            "n_params": llc.llama_model_n_params(self._model),
            "n_ctx": self.n_ctx,
            "ctx_size": self.kv_tokens,
            "cache_type_k": self.config.cache_type_k,
            "cache_type_v": self.config.cache_type_v,
            "flash_attn": self.config.flash_attn,
            "kv_on_demand": self.config.kv_on_demand,
            "n_ctx_train": llc.llama_model_n_ctx_train(self._model),
            "parallel": self.config.parallel,
            "n_batch": self.config.n_batch,
            "max_queue": self.config.max_queue,
            "prefix_cache": self.config.prefix_cache,
            "n_threads": self._threads,
            "n_gpu_layers": self.config.n_gpu_layers,
            "chat_template_sha256": hashlib.sha256(self.vocab.template.source.encode()).hexdigest(),
        }

    def stats(self) -> EngineStats:
        """A snapshot of counters and gauges."""
        with self._lock:
            snapshot = EngineStats(**vars(self._stats))
            snapshot.requests_finished = dict(self._stats.requests_finished)
            snapshot.waiting = self._n_waiting
        busy = [s.cells for s in self._slots if s.request is not None]
        snapshot.kv_cells_used = len(set().union(*busy))
        return snapshot

    # ---- text ----------------------------------------------------------------

    def supports_tools(self) -> bool:
        """True when the model's chat template renders a `tools` list."""
        return self.vocab.template.uses_tools

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        """Render messages (and tools, when the template knows them) and tokenize them; message
        text is never parsed for control tokens (see Vocab.chat_prompt)."""
        return self.vocab.chat_prompt(messages, tools)

    def text_prompt(self, text: str) -> list[int]:
        """Tokenize a completion prompt as plain text (BOS as the model wants)."""
        return self.vocab.text_prompt(text)

    def detokenize(self, tokens: list[int]) -> str:
        """The text of token ids (special tokens as their text)."""
        return self.vocab.detokenize(tokens)

    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        """Text → token ids."""
        return self.vocab.tokenize(text, add_special, parse_special)

    # ---- submitting ----------------------------------------------------------

    def check_fit(self, n_prompt: int, max_tokens: int | None) -> int:
        """Return the token budget for a request, or raise if it cannot fit the context."""
        if n_prompt == 0:
            raise InvalidRequest("the prompt is empty", "prompt")
        room = self.n_ctx - n_prompt
        if room <= 0 or (max_tokens is not None and max_tokens > room):
            wanted = f" + {max_tokens} requested tokens" if max_tokens is not None else ""
            raise ContextLengthExceeded(
                f"This model's context per request is {self.n_ctx} tokens; the prompt has "
                f"{n_prompt} tokens{wanted}. Shorten the messages or lower max_tokens."
            )
        return max_tokens if max_tokens is not None else min(room, self.config.max_tokens_default)

    def stalled_for(self) -> float:
        """Seconds without worker progress while work is pending (0 when healthy or idle)."""
        if self._stopping:
            return 0.0
        if not self._worker.is_alive():
            return float("inf")
        with self._lock:
            busy = self._stats.running > 0 or self._n_waiting > 0
        return time.monotonic() - self._progress_at if busy else 0.0

    async def submit(
        self, prompt_tokens: list[int], params: GenerationParams, n: int = 1
    ) -> list[GenerationStream]:
        """Queue n generations of one prompt (the first prefills it, the others copy its cells);
        raises ContextLengthExceeded, QueueFull, InvalidRequest or EngineUnavailable at once."""
        loop = asyncio.get_running_loop()
        check_top(params.logprobs)
        max_tokens = self.check_fit(len(prompt_tokens), params.max_tokens)
        if self.stalled_for() > self.config.watchdog_s:
            raise EngineUnavailable(
                f"The engine for {self.model_id!r} has made no progress for "
                f"{self.stalled_for():.0f} s; retry later."
            )
        seeds = [None if params.seed is None else params.seed + i for i in range(n)]
        choices = [replace(params, seed=seed) for seed in seeds]
        if params.json_schema is not None:  # grammars can be slow to build: not on the loop
            samplers = await asyncio.to_thread(self._samplers, choices)
        else:
            samplers = self._samplers(choices)
        with self._lock:
            free_slots = self.config.parallel - self._stats.running
            queued = self._n_waiting + n - free_slots  # requests that will have to wait
            if queued > self.config.max_queue:
                self._stats.rejected += 1
                for sampler in samplers:
                    sampler.free()
                raise QueueFull(
                    f"The server is busy: {self.config.parallel} requests are running and "
                    f"{max(self._n_waiting - free_slots, 0)} waiting for model "
                    f"{self.model_id!r}. Retry shortly.",
                    retry_after=1,
                )
            self._n_waiting += n
        requests: list[Request] = []
        for choice, sampler in zip(choices, samplers, strict=True):
            request = Request(
                prompt=list(prompt_tokens),
                params=choice,
                max_tokens=max_tokens,
                sampler=sampler,
                loop=loop,
                leader=requests[0] if requests else None,
            )
            requests.append(request)
            self._incoming.put(request)
        return [GenerationStream(self._wake, r) for r in requests]

    def _samplers(self, choices: list[GenerationParams]) -> list[Sampler]:
        samplers: list[Sampler] = []
        try:
            for choice in choices:
                samplers.append(Sampler(choice, self._vocab, self._n_vocab))
        except Exception:
            for sampler in samplers:
                sampler.free()
            raise
        return samplers

    def _wake(self) -> None:
        self._incoming.put(None)

    # ---- the worker ----------------------------------------------------------

    def _run(self) -> None:
        """Worker loop: admit, batch, decode, sample, until close()."""
        while not self._stopping:
            self._progress_at = time.monotonic()
            try:
                active = [s for s in self._slots if s.request is not None]
                self._take_incoming(block=not active)
                self._drop_cancelled()
                self._admit()
                self._compact()
                active = [s for s in self._slots if s.request is not None]
                if active:
                    self._step(active)
            except Exception:
                log.exception("engine step failed; failing the running requests")
                self._fail_all("internal engine error")
            finally:
                self._outbox.flush()

    def _take_incoming(self, block: bool) -> None:
        try:
            item = self._incoming.get(timeout=0.5) if block else self._incoming.get_nowait()
            while True:
                if item is not None:
                    self._waiting.append(item)
                item = self._incoming.get_nowait()
        except queue.Empty:
            return

    def _drop_cancelled(self) -> None:
        for request in [r for r in self._waiting if r.cancelled]:
            self._waiting.remove(request)
            self._leave_queue()
            self._close_request(request, "cancelled", 0, 0)
        for slot in self._slots:
            if slot.request is not None and slot.request.cancelled:
                self._finish(slot, "cancelled")

    def _leave_queue(self) -> None:
        with self._lock:
            self._n_waiting -= 1

    def _admit(self) -> None:
        """Move waiting requests, first come first served, into free slots while the shared KV
        cache has room (idle slots' cells make way, least recently used first).

        A later choice of an n>1 request waits until the first has prefilled the prompt, and so
        does a request whose prompt another slot is prefilling further than any cache holds it;
        then it, like any request whose prefix another slot holds, shares those cells instead of
        recomputing them.
        """
        for request in list(self._waiting):
            free = [s for s in self._slots if s.request is None]
            if not free:
                return
            if request.waits_for_leader():
                continue
            if self.config.prefix_cache and awaits_prefill(request, self._slots, self._host):
                continue
            placement = choose(request, self._slots, free, self._host, self.config.prefix_cache)
            gone: list[Slot] | None = []
            if self.config.kv_unified:  # split caches: a slot's own cells always fit n_ctx
                gone = evictions(placement, request, self._slots, self.kv_tokens)
            if gone is None:
                return  # the oldest waiting request waits for cells; no one overtakes it
            for slot in gone:
                self._save_to_host(slot, 0)
                llc.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
                slot.hold([], [])
            self._waiting.remove(request)
            self._leave_queue()
            self._place(request, placement)

    def _place(self, request: Request, placement: Placement) -> None:
        """Give the request its slot, starting from the cached prefix chosen for it."""
        slot, keep = placement.slot, placement.keep
        self._save_to_host(slot, keep)
        cells = slot.cells[:keep]
        if placement.source is not None:
            llc.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
            self._copy_sequence(placement.source, slot)
            keep = placement.reused
            shared = placement.source.cells[:keep]  # split caches copy: new cells
            cells = (
                shared if self.config.kv_unified else list(itertools.islice(self._cell_ids, keep))
            )
            with self._lock:
                self._stats.shared_prefix_tokens += keep
        elif placement.host_key >= 0 and self._host is not None:
            llc.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
            restored = self._host.restore(self._ctx, placement.host_key, slot.seq_id)
            keep = placement.reused if restored is not None else 0
            cells = list(itertools.islice(self._cell_ids, keep))
            with self._lock:
                self._stats.host_cache_tokens += keep
        if not llc.llama_memory_seq_rm(self._memory, slot.seq_id, keep, -1):
            llc.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
            keep, cells = 0, []
        request.queued_s = time.monotonic() - request.submitted_at
        slot.hold(request.prompt[:keep], cells)
        slot.pending = request.prompt[keep:]
        slot.reused = keep
        slot.request = request
        slot.generated = 0
        slot.assembler = StopTextAssembler(request.params.stop)
        slot.draft = []
        slot.drafter = None
        if self.config.speculative and _greedy(request.params):
            slot.drafter = Drafter(request.prompt, self.config.draft_tokens)
        with self._lock:
            self._stats.running += 1
            self._stats.prompt_tokens += len(request.prompt)
            self._stats.cached_prompt_tokens += keep

    def _compact(self) -> None:
        """Keep the running slots consecutive: the last one swaps places with the first gap.

        With split caches llama.cpp decodes a batch in one graph only over consecutive sequence
        ids, and once more for every further run: measured here, 8 running slots with one gap
        took 47 ms a step instead of 35, four slots two apart 34 ms instead of 24. A swap, not a
        move: the gap's cached prompt goes to the last slot's place, so no cached prefix is lost
        (overwriting it cost the benchmark's next requests ~80 cached tokens and ~50 ms of TTFT
        p95 at c=16). Copying a sequence's state takes under a millisecond per ~100 cells.
        """
        if self.config.kv_unified:
            return  # one stream: any set of sequences decodes together
        while True:
            running = [s for s in self._slots if s.request is not None]
            if not running or running[-1].seq_id - running[0].seq_id < len(running):
                return
            last = running[-1]
            gap = next(s for s in self._slots[running[0].seq_id :] if s.request is None)
            kept, released_at = list(gap.cached), gap.released_at
            # seq_cp copies at the next decode: the last slot's cells must stay until then
            state = self._read_state(gap.seq_id) if kept and self._copies_now(last) else None
            if kept and state is None:
                self._save_to_host(gap, 0)
            llc.llama_memory_seq_rm(self._memory, gap.seq_id, -1, -1)
            copied_now = self._copy_sequence(last, gap)
            gap.take_over(last, list(itertools.islice(self._cell_ids, len(last.cells))))
            if state is not None and copied_now:
                llc.llama_memory_seq_rm(self._memory, last.seq_id, -1, -1)
                last.hold([], [])
                if llc.llama_state_seq_set_data(self._ctx, state, len(state), last.seq_id):
                    last.hold(kept, list(itertools.islice(self._cell_ids, len(kept))))
                last.released_at = released_at
            with self._lock:
                self._stats.moved_sequences += 1

    def _read_state(self, seq_id: int) -> ctypes.Array[ctypes.c_uint8] | None:
        """A copy of one sequence's cells (llama.cpp's state format), or None if refused."""
        size = llc.llama_state_seq_get_size(self._ctx, seq_id)
        state = (ctypes.c_uint8 * size)()
        written = llc.llama_state_seq_get_data(self._ctx, state, size, seq_id)
        if written == 0:
            return None
        return state if written == size else (ctypes.c_uint8 * written).from_buffer(state)

    def _copies_now(self, source: Slot) -> bool:
        """Whether copying this slot's sequence moves its state now (not llama.cpp's seq_cp)."""
        return not self.config.kv_unified and 2 * len(source.cells) < self._stream_cells

    def _copy_sequence(self, source: Slot, target: Slot) -> bool:
        """Give the (cleared) target sequence the source's cells; False if by seq_cp.

        A unified cache only tags the cells. In split caches llama.cpp's seq_cp copies the
        source's whole stream at the next decode (every cell a slot may hold: 46 MB at 2,048
        f16 cells) and makes that decode re-reserve its graph; the state of the source's own
        cells moves less while it holds under half its stream, and at once.
        """
        src, dst = source.seq_id, target.seq_id
        if not self._copies_now(source):
            llc.llama_memory_seq_cp(self._memory, src, dst, -1, -1)
            return False
        state = self._read_state(src)
        if state is None or llc.llama_state_seq_set_data(self._ctx, state, len(state), dst) == 0:
            log.warning("llama.cpp refused a sequence's state; copying its stream instead")
            llc.llama_memory_seq_rm(self._memory, dst, -1, -1)
            llc.llama_memory_seq_cp(self._memory, src, dst, -1, -1)
            return False
        return True

    def _save_to_host(self, slot: Slot, keep: int) -> None:
        """Copy a slot's cells to the host cache before a new request overwrites past `keep`."""
        host = self._host
        if host is None or len(slot.cached) - keep < MIN_SHARED_PREFIX:
            return
        if not host.contains_prefix(slot.cached):
            host.save(self._ctx, slot.seq_id, slot.cached)
            with self._lock:
                self._stats.host_cache_bytes = host.used_bytes
                self._stats.host_cache_entries = len(host)

    def _step(self, active: list[Slot]) -> None:
        """Decode one batch, then sample every slot that got logits.

        If llama_decode refuses the batch, each slot's part is decoded alone so that only the
        slot that caused the failure ends (with an error); its neighbours carry on.
        """
        plan = self._plan(active)
        rc = self._decode(plan)
        if rc != 0:
            log.warning(
                "llama_decode returned %d for %d slots; decoding them one by one", rc, len(plan)
            )
            for entry in plan:
                entry.slot.logit_index = -1
                if self._decode([entry]) != 0:
                    self._fail_slot(entry.slot, f"llama_decode failed with code {rc}")
        self._progress_at = time.monotonic()
        for slot in active:
            if slot.request is not None and slot.logit_index >= 0:
                if not slot.pending:
                    slot.request.prefilled = True
                self._sample(slot)
            slot.draft = []

    def _plan(self, active: list[Slot]) -> list[Entry]:
        """A token for every generating slot first (with its draft, if any), then prefill
        chunks within n_batch."""
        plan: list[Entry] = []
        generating = [s for s in active if not s.pending]
        n = len(generating)
        step_rows = min(self.config.n_batch, self.config.draft_step_rows)
        room = draft_room(n, prefilling=n < len(active), step_rows=step_rows)
        for slot in active:
            slot.logit_index = -1
        for slot in generating:
            slot.draft = self._draft(slot, room)
            room -= len(slot.draft)
            n += len(slot.draft)
            rows = 1 + len(slot.draft)
            plan.append(Entry(slot, [slot.last_token, *slot.draft], len(slot.cached), rows))
        for slot in active:
            budget = self.config.n_batch - n
            if not slot.pending or budget <= 0:
                continue
            chunk, slot.pending = slot.pending[:budget], slot.pending[budget:]
            plan.append(Entry(slot, chunk, len(slot.cached), 0 if slot.pending else 1))
            n += len(chunk)
        return plan

    def _draft(self, slot: Slot, budget: int) -> list[int]:
        """Draft tokens for a generating slot: none past max_tokens, the context or the batch."""
        request = slot.request
        if slot.drafter is None or request is None:
            return []
        room = min(
            budget,
            request.max_tokens - slot.generated - 1,
            self.n_ctx - len(slot.cached) - 2,
        )
        return slot.drafter.draft(room)

    def _decode(self, plan: list[Entry]) -> int:
        """Load the planned tokens into the batch and decode; on success the slots keep them."""
        batch = self._batch
        n = 0
        for entry in plan:
            for i, token in enumerate(entry.tokens):
                batch.token[n] = token
                batch.pos[n] = entry.start + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = entry.slot.seq_id
                batch.logits[n] = i >= len(entry.tokens) - entry.rows
                n += 1
            entry.slot.logit_index = n - entry.rows if entry.rows else -1
        batch.n_tokens = n
        rc = int(llc.llama_decode(self._ctx, batch))
        if rc == 0:
            for entry in plan:
                entry.slot.grow(entry.tokens, itertools.islice(self._cell_ids, len(entry.tokens)))
            with self._lock:
                self._stats.decode_steps += 1
                self._stats.decode_tokens += n
        return rc

    def _fail_slot(self, slot: Slot, message: str) -> None:
        """End one slot's request with an error and forget its cells."""
        if slot.request is not None:
            self._finish(slot, "error", message)
        llc.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
        slot.hold([], [])
        slot.logit_index = -1

    def _sample(self, slot: Slot) -> None:
        """Sample the slot's next token (and check its draft); emit the text they complete.

        Row i of a drafting slot holds the logits after its i-th draft token: the sampled token
        is kept, and the next row is read only while the sampled tokens equal the draft. The
        cells of rejected draft tokens leave the KV cache.
        """
        request = slot.request
        assert request is not None
        draft = slot.draft
        accepted = 0
        kept = len(slot.cached) - len(draft)  # cells up to the slot's last token
        for i in range(len(draft) + 1):
            try:
                token = request.sampler.sample(self._ctx, slot.logit_index + i)
            except InvalidRequest as exc:
                self._finish(slot, "error", str(exc))
                break
            if not self._take(slot, request, token, slot.logit_index + i, kept + i):
                break
            if i == len(draft) or token != draft[i]:
                break
            accepted += 1
        if draft:
            rejected = len(draft) - accepted
            if rejected:
                llc.llama_memory_seq_rm(self._memory, slot.seq_id, len(slot.cached) - rejected, -1)
                slot.truncate(len(slot.cached) - rejected)
            if slot.drafter is not None:
                slot.drafter.update(len(draft), accepted)
            with self._lock:
                self._stats.drafted_tokens += len(draft)
                self._stats.accepted_tokens += accepted

    def _take(self, slot: Slot, request: Request, token: int, row: int, cells: int) -> bool:
        """Emit one sampled token's text (`cells` precede it); False once the request ended."""
        assert slot.assembler is not None
        if llc.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot, "stop")
            return False
        slot.generated += 1
        with self._lock:
            self._stats.generated_tokens += 1
        entry = None
        if request.params.logprobs is not None:
            logits = np.ctypeslib.as_array(
                llc.llama_get_logits_ith(self._ctx, row), (self._n_vocab,)
            )
            entry = token_logprob(logits, token, request.params.logprobs, self._piece)
        text = slot.assembler.feed(self._piece(token), entry)
        entries = slot.assembler.entries()
        if text or entries:
            self._outbox.put(request, Piece(text, tuple(entries)))
        if slot.assembler.stopped:
            self._finish(slot, "stop")
        elif slot.generated >= request.max_tokens or cells + 1 >= self.n_ctx:
            self._finish(slot, "length")
        else:
            slot.last_token = token
            if slot.drafter is not None:
                slot.drafter.extend([token])
            return True
        return False

    def _finish(self, slot: Slot, reason: FinishReason, error: str | None = None) -> None:
        """End the slot's request; its KV stays cached for prefix reuse."""
        request = slot.request
        assert request is not None and slot.assembler is not None
        if reason in ("stop", "length"):
            tail = slot.assembler.flush()
            entries = slot.assembler.entries()
            if tail or entries:
                self._outbox.put(request, Piece(tail, tuple(entries)))
        slot.request = None
        slot.pending = []
        slot.released_at = time.monotonic()
        with self._lock:
            self._stats.running -= 1
        stop = slot.assembler.stopped_by if reason == "stop" else None
        self._close_request(request, reason, slot.generated, slot.reused, error, stop)

    def _close_request(
        self,
        request: Request,
        reason: FinishReason,
        generated: int,
        reused: int,
        error: str | None = None,
        stop_sequence: str | None = None,
    ) -> None:
        request.done = True
        request.sampler.free()
        with self._lock:
            finished = self._stats.requests_finished
            finished[reason] = finished.get(reason, 0) + 1
        queued = request.queued_s
        if queued is None:  # never admitted
            queued = time.monotonic() - request.submitted_at
        finish = Finish(
            reason, len(request.prompt), generated, reused, error, queued, stop_sequence
        )
        self._outbox.put(request, finish)

    def _fail_all(self, message: str) -> None:
        for slot in self._slots:
            self._fail_slot(slot, message)

    # ---- shutdown ------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker, end open requests, free llama.cpp memory."""
        if self._stopping:
            return
        self._stopping = True
        self._wake()
        self._worker.join(timeout=30)
        if self._worker.is_alive():  # stuck in llama_decode: leak rather than free under it
            log.error("engine worker for %s did not stop; not freeing its memory", self.model_id)
            return
        for slot in self._slots:
            if slot.request is not None:
                self._finish(slot, "cancelled")
        while self._waiting:
            self._close_request(self._waiting.popleft(), "cancelled", 0, 0)
        self._outbox.flush()
        llc.llama_batch_free(self._batch)
        llc.llama_free(self._ctx)
        llc.llama_model_free(self._model)
        log.info("closed %s", self.model_id)


def _sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _greedy(params: GenerationParams) -> bool:
    """Requests whose drafts are checked by exact match: greedy and free of grammars."""
    return params.temperature <= 0 and params.json_schema is None
