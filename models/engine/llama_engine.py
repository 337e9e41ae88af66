"""Continuous-batching LLM engine on llama-cpp-python's low-level API."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import logging
import os
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp as llc

from models.catalog import ModelSpec
from models.chat_template import CHATML_TEMPLATE, ChatTemplate
from models.engine.base import (
    EngineConfig,
    EngineStats,
    Finish,
    FinishReason,
    GenerationParams,
    Piece,
)
from models.engine.sampling import build_sampler
from models.engine.text import StopTextAssembler
from models.errors import ContextLengthExceeded, EngineFailure, QueueFull

log = logging.getLogger(__name__)
_llama_log = logging.getLogger("llama.cpp")
_GGML_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml: 1 debug, 2 info, 5 continued

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


class GenerationStream:
    """Async stream of one request's pieces, ending with a Finish; cancel() stops it."""

    def __init__(self, engine: LlamaEngine, request: _Request) -> None:
        self._engine = engine
        self._request = request

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> Piece | Finish:
        if self._request.delivered_finish:
            raise StopAsyncIteration
        item = await self._request.events.get()
        if isinstance(item, Finish):
            self._request.delivered_finish = True
        return item

    def cancel(self) -> None:
        """Ask the engine to drop this request at its next step (no-op once finished)."""
        if not self._request.delivered_finish and not self._request.cancelled:
            self._request.cancelled = True
            self._engine._wake()


@dataclass(eq=False)
class _Request:
    """A submitted request as the worker sees it."""

    prompt: list[int]
    params: GenerationParams
    max_tokens: int
    sampler: int
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[Piece | Finish] = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    delivered_finish: bool = False

    def emit(self, item: Piece | Finish) -> None:
        """Hand an event to the request's event loop (thread-safe)."""
        with contextlib.suppress(RuntimeError):  # the loop is gone at shutdown
            self.loop.call_soon_threadsafe(self.events.put_nowait, item)


@dataclass(eq=False)
class _Slot:
    """One llama.cpp sequence: the tokens in its KV cache and the request using it."""

    seq_id: int
    cached: list[int] = field(default_factory=list)
    request: _Request | None = None
    pending: list[int] = field(default_factory=list)
    reused: int = 0
    generated: int = 0
    last_token: int = -1
    logit_index: int = -1
    assembler: StopTextAssembler | None = None


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
        self._vocab = llc.llama_model_get_vocab(self._model)
        self._pieces: dict[int, bytes] = {}
        self._n_vocab = llc.llama_vocab_n_tokens(self._vocab)
        n_ctx = min(spec.n_ctx or config.n_ctx, llc.llama_model_n_ctx_train(self._model))
        cparams = llc.llama_context_default_params()
        cparams.n_ctx = n_ctx * config.parallel
        cparams.n_batch = cparams.n_ubatch = config.n_batch
        cparams.n_seq_max = config.parallel
        cparams.n_threads = cparams.n_threads_batch = self._threads
        cparams.kv_unified = False
        cparams.no_perf = True
        self._ctx = llc.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            llc.llama_model_free(self._model)
            raise EngineFailure(f"llama.cpp could not create a context for {self.path}")
        self.n_ctx = llc.llama_n_ctx_seq(self._ctx)
        self._memory = llc.llama_get_memory(self._ctx)
        self._batch = llc.llama_batch_init(config.n_batch, 0, 1)
        self._template = ChatTemplate(
            spec.chat_template or self._meta("tokenizer.chat_template") or CHATML_TEMPLATE,
            bos_token=self._special_text(llc.llama_vocab_bos(self._vocab)),
            eos_token=self._special_text(llc.llama_vocab_eos(self._vocab)),
        )
        self._slots = [_Slot(seq_id=i) for i in range(config.parallel)]
        self._incoming: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._waiting: deque[_Request] = deque()
        self._lock = threading.Lock()
        self._n_waiting = 0
        self._stats = EngineStats(kv_cells_total=self.n_ctx * config.parallel)
        self._stopping = False
        self._worker = threading.Thread(target=self._run, name=f"engine-{spec.id}", daemon=True)
        self._worker.start()
        log.info(
            "loaded %s from %s (context %d per request, %d slots, %d threads)",
            spec.id,
            self.path,
            self.n_ctx,
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
            "n_ctx_train": llc.llama_model_n_ctx_train(self._model),
            "parallel": self.config.parallel,
            "n_batch": self.config.n_batch,
            "max_queue": self.config.max_queue,
            "prefix_cache": self.config.prefix_cache,
            "n_threads": self._threads,
            "n_gpu_layers": self.config.n_gpu_layers,
            "chat_template_sha256": hashlib.sha256(self._template.source.encode()).hexdigest(),
        }

    def stats(self) -> EngineStats:
        """A snapshot of counters and gauges."""
        with self._lock:
            snapshot = EngineStats(**vars(self._stats))
            snapshot.requests_finished = dict(self._stats.requests_finished)
            snapshot.waiting = self._n_waiting
        snapshot.kv_cells_used = sum(len(s.cached) for s in self._slots if s.request is not None)
        return snapshot

    # ---- text ----------------------------------------------------------------

    def render_chat(self, messages: list[dict[str, Any]]) -> str:
        """Render messages with the model's chat template."""
        return self._template.render(messages)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Text → token ids (special tokens in the text are parsed)."""
        data = text.encode()
        size = len(data) + 8
        while True:
            tokens = (llc.llama_token * size)()
            n = llc.llama_tokenize(self._vocab, data, len(data), tokens, size, add_special, True)
            if n >= 0:
                return list(tokens[:n])
            size = -n

    def tokenize_chat(self, text: str) -> list[int]:
        """Tokenize rendered chat text, adding BOS only if the template did not."""
        bos = self._special_text(llc.llama_vocab_bos(self._vocab))
        add_bos = bool(llc.llama_vocab_get_add_bos(self._vocab)) and not (
            bos and text.startswith(bos)
        )
        return self.tokenize(text, add_special=add_bos)

    def _piece(self, token: int, special: bool = False) -> bytes:
        cached = self._pieces.get(token) if not special else None
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = llc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if not special:
            self._pieces[token] = buf.raw[:n]
        return buf.raw[:n]

    def _special_text(self, token: int) -> str:
        return self._piece(token, special=True).decode(errors="replace") if token >= 0 else ""

    def _meta(self, key: str) -> str | None:
        size = 1 << 16
        buf = ctypes.create_string_buffer(size)
        n = llc.llama_model_meta_val_str(self._model, key.encode(), buf, size)
        if n < 0:
            return None
        if n >= size:
            buf = ctypes.create_string_buffer(n + 1)
            llc.llama_model_meta_val_str(self._model, key.encode(), buf, n + 1)
        return buf.value.decode(errors="replace")

    # ---- submitting ----------------------------------------------------------

    def check_fit(self, n_prompt: int, max_tokens: int | None) -> int:
        """Return the token budget for a request, or raise if it cannot fit the context."""
        room = self.n_ctx - n_prompt
        if room <= 0 or (max_tokens is not None and max_tokens > room):
            wanted = f" + {max_tokens} requested tokens" if max_tokens is not None else ""
            raise ContextLengthExceeded(
                f"This model's context per request is {self.n_ctx} tokens; the prompt has "
                f"{n_prompt} tokens{wanted}. Shorten the messages or lower max_tokens."
            )
        return max_tokens if max_tokens is not None else room

    def submit(self, prompt_tokens: list[int], params: GenerationParams) -> GenerationStream:
        """Queue a request; raises ContextLengthExceeded or QueueFull at once."""
        max_tokens = self.check_fit(len(prompt_tokens), params.max_tokens)
        sampler = build_sampler(params, self._vocab, self._n_vocab)  # may raise InvalidRequest
        with self._lock:
            free_slots = self.config.parallel - self._stats.running
            queued = self._n_waiting - free_slots  # requests that will have to wait
            if queued >= self.config.max_queue:
                self._stats.rejected += 1
                llc.llama_sampler_free(sampler)
                raise QueueFull(
                    f"The server is busy: {self.config.parallel} requests are running and "
                    f"{max(queued, 0)} waiting for model {self.model_id!r}. Retry shortly.",
                    retry_after=1,
                )
            self._n_waiting += 1
        request = _Request(
            prompt=list(prompt_tokens),
            params=params,
            max_tokens=max_tokens,
            sampler=sampler,
            loop=asyncio.get_running_loop(),
        )
        self._incoming.put(request)
        return GenerationStream(self, request)

    def _wake(self) -> None:
        self._incoming.put(None)

    # ---- the worker ----------------------------------------------------------

    def _run(self) -> None:
        """Worker loop: admit, batch, decode, sample, until close()."""
        while not self._stopping:
            try:
                active = [s for s in self._slots if s.request is not None]
                self._take_incoming(block=not active)
                self._drop_cancelled()
                self._admit()
                active = [s for s in self._slots if s.request is not None]
                if active:
                    self._step(active)
            except Exception:
                log.exception("engine step failed; failing the running requests")
                self._fail_all("internal engine error")

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
        """Move waiting requests, first come first served, into free slots."""
        while self._waiting:
            free = [s for s in self._slots if s.request is None]
            if not free:
                return
            request = self._waiting.popleft()
            self._leave_queue()
            slot = max(free, key=lambda s: _common_prefix(s.cached, request.prompt))
            keep = min(_common_prefix(slot.cached, request.prompt), len(request.prompt) - 1)
            if not self.config.prefix_cache:
                keep = 0
            if not llc.llama_memory_seq_rm(self._memory, slot.seq_id, keep, -1):
                llc.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
                keep = 0
            slot.cached = request.prompt[:keep]
            slot.pending = request.prompt[keep:]
            slot.reused = keep
            slot.request = request
            slot.generated = 0
            slot.assembler = StopTextAssembler(request.params.stop)
            with self._lock:
                self._stats.running += 1
                self._stats.prompt_tokens += len(request.prompt)
                self._stats.cached_prompt_tokens += keep

    def _step(self, active: list[_Slot]) -> None:
        """Decode one batch, then sample every slot that got logits."""
        n = self._fill_batch(active)
        rc = llc.llama_decode(self._ctx, self._batch)
        if rc != 0:
            log.error("llama_decode returned %d for a batch of %d tokens", rc, n)
            self._fail_all(f"llama_decode failed with code {rc}")
            return
        for slot in active:
            if slot.logit_index >= 0:
                self._sample(slot)

    def _fill_batch(self, active: list[_Slot]) -> int:
        """A token for every generating slot first, then prefill chunks within n_batch."""
        batch = self._batch
        n = 0

        def add(token: int, pos: int, seq_id: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq_id
            batch.logits[n] = logits
            n += 1

        for slot in active:
            slot.logit_index = -1
            if not slot.pending:
                add(slot.last_token, len(slot.cached), slot.seq_id, True)
                slot.cached.append(slot.last_token)
                slot.logit_index = n - 1
        for slot in active:
            budget = self.config.n_batch - n
            if not slot.pending or budget <= 0:
                continue
            chunk, slot.pending = slot.pending[:budget], slot.pending[budget:]
            start = len(slot.cached)
            for i, token in enumerate(chunk):
                add(token, start + i, slot.seq_id, not slot.pending and i == len(chunk) - 1)
            slot.cached.extend(chunk)
            if not slot.pending:
                slot.logit_index = n - 1
        batch.n_tokens = n
        return n

    def _sample(self, slot: _Slot) -> None:
        """Sample the slot's next token and emit whatever text it completes."""
        request = slot.request
        assert request is not None and slot.assembler is not None
        token = llc.llama_sampler_sample(request.sampler, self._ctx, slot.logit_index)
        if llc.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot, "stop")
            return
        slot.generated += 1
        with self._lock:
            self._stats.generated_tokens += 1
        text = slot.assembler.feed(self._piece(token))
        if text:
            request.emit(Piece(text))
        if slot.assembler.stopped:
            self._finish(slot, "stop")
        elif slot.generated >= request.max_tokens or len(slot.cached) + 1 >= self.n_ctx:
            self._finish(slot, "length")
        else:
            slot.last_token = token

    def _finish(self, slot: _Slot, reason: FinishReason, error: str | None = None) -> None:
        """End the slot's request; its KV stays cached for prefix reuse."""
        request = slot.request
        assert request is not None and slot.assembler is not None
        if reason in ("stop", "length"):
            tail = slot.assembler.flush()
            if tail:
                request.emit(Piece(tail))
        slot.request = None
        slot.pending = []
        with self._lock:
            self._stats.running -= 1
        self._close_request(request, reason, slot.generated, slot.reused, error)

    def _close_request(
        self,
        request: _Request,
        reason: FinishReason,
        generated: int,
        reused: int,
        error: str | None = None,
    ) -> None:
        llc.llama_sampler_free(request.sampler)
        with self._lock:
            finished = self._stats.requests_finished
            finished[reason] = finished.get(reason, 0) + 1
        request.emit(Finish(reason, len(request.prompt), generated, reused, error))

    def _fail_all(self, message: str) -> None:
        for slot in self._slots:
            if slot.request is not None:
                self._finish(slot, "error", message)
            llc.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
            slot.cached = []

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


def _common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
