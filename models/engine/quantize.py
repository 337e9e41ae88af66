"""Re-quantise a GGUF with llama.cpp (e.g. Q4_1 → Q4_0) to get a real second model."""

from __future__ import annotations

import logging
from pathlib import Path

import llama_cpp as llc

log = logging.getLogger(__name__)

FTYPES = {
    "Q4_0": llc.LLAMA_FTYPE_MOSTLY_Q4_0,
    "Q8_0": llc.LLAMA_FTYPE_MOSTLY_Q8_0,
    "Q3_K_M": llc.LLAMA_FTYPE_MOSTLY_Q3_K_M,
}


def requantize(source: Path, target: Path, ftype: str, threads: int = 0) -> Path:
    """Write `source` re-quantised as `ftype` to `target` (skipped if it already exists)."""
    if target.is_file():
        return target
    if ftype not in FTYPES:
        raise ValueError(f"unknown quantisation {ftype!r}; choose one of {', '.join(FTYPES)}")
    params = llc.llama_model_quantize_default_params()
    params.ftype = FTYPES[ftype]
    params.allow_requantize = True
    params.nthread = threads
    target.parent.mkdir(parents=True, exist_ok=True)
    rc = llc.llama_model_quantize(str(source).encode(), str(target).encode(), params)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed with code {rc}")
    log.info("wrote %s (%s) from %s", target, ftype, source)
    return target
