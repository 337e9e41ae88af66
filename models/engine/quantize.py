"""Quantise a GGUF with llama.cpp's `llama_model_quantize`: temp file, rename, progress, logging."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import llama_cpp as llc

from models.engine.llama_engine import _forward_llama_log, _init_backend

log = logging.getLogger(__name__)
_llama_log = logging.getLogger("llama.cpp")

# File types that make sense without an importance matrix (the IQ types need one).
_NAMES = (
    "F32",
    "F16",
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_1",
    "Q5_0",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_1",
    "Q4_0",
    "Q3_K_L",
    "Q3_K_M",
    "Q3_K_S",
    "Q2_K",
)
FTYPES: dict[str, int] = {
    name: getattr(llc, "LLAMA_FTYPE_ALL_F32" if name == "F32" else f"LLAMA_FTYPE_MOSTLY_{name}")
    for name in _NAMES
}
GGUF_MAGIC = b"GGUF"
_TENSOR_LINE = re.compile(r"^\[\s*(\d+)\s*/\s*(\d+)\]")  # "[  12/ 272]  blk.0.attn_k.weight …"

Progress = Callable[[int, int], None]  # (tensors done, tensors in all)


class QuantizeError(ValueError):
    """A quantisation the user asked for that cannot run (bad type, not a GGUF, target exists)."""


def ftype_name(name: str) -> str:
    """The canonical name of a file type given in any case (QuantizeError if unknown)."""
    canonical = name.strip().upper()
    if canonical not in FTYPES:
        raise QuantizeError(
            f"unknown quantisation type {name!r}; choose one of {', '.join(FTYPES)}"
        )
    return canonical


def check_gguf(path: Path) -> Path:
    """`path` if it is a readable GGUF file (QuantizeError otherwise)."""
    if not path.is_file():
        raise QuantizeError(f"no such GGUF file: {path}")
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise QuantizeError(f"{path} is not a GGUF file (no GGUF magic bytes)")
    return path


_progress_lock = threading.Lock()
_progress_hook: list[Progress] = []


@llc.llama_log_callback
def _quantize_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp's log while quantising: tensor counters to the progress hook, lines to logging."""
    message = text.decode(errors="replace").rstrip()
    match = _TENSOR_LINE.match(message)
    if match and _progress_hook:
        _progress_hook[0](int(match.group(1)), int(match.group(2)))
    _forward_llama_log(level, text, user_data)


@contextlib.contextmanager
def _routed_log(progress: Progress | None) -> Iterator[None]:
    """Route llama.cpp's log through `_quantize_log` for the duration, then back to the engine's."""
    _init_backend()
    with _progress_lock:
        if progress is not None:
            _progress_hook.append(progress)
        llc.llama_log_set(_quantize_log, ctypes.c_void_p(0))
        try:
            yield
        finally:
            llc.llama_log_set(_forward_llama_log, ctypes.c_void_p(0))
            _progress_hook.clear()


def quantize(
    source: str | Path,
    target: str | Path,
    ftype: str,
    *,
    overwrite: bool = False,
    threads: int = 0,
    progress: Progress | None = None,
) -> Path:
    """Write `source` quantised as `ftype` to `target` through a temp file renamed at the end."""
    source, target = Path(source), Path(target)
    ftype = ftype_name(ftype)
    check_gguf(source)
    if target.exists() and not overwrite:
        raise QuantizeError(f"{target} already exists (pass --overwrite to replace it)")
    if target.resolve() == source.resolve():
        raise QuantizeError("the target is the source file; choose another output path")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")  # same folder: atomic
    params = llc.llama_model_quantize_default_params()
    params.ftype = FTYPES[ftype]
    params.allow_requantize = True
    params.nthread = threads
    try:
        with _routed_log(progress):
            rc = llc.llama_model_quantize(str(source).encode(), str(tmp).encode(), params)
        if rc != 0:
            raise QuantizeError(f"llama.cpp could not quantise {source} (code {rc}; see the log)")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s (%s) from %s", target, ftype, source)
    return target


def requantize(source: Path, target: Path, ftype: str, threads: int = 0) -> Path:
    """`quantize` for tests and benchmarks: an existing target is reused as it is."""
    if target.is_file():
        return target
    return quantize(source, target, ftype, threads=threads)
