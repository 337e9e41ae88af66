"""The model panel: what the engine says about the model it serves (`meta` of GET /v1/models)."""

from __future__ import annotations

import re
from typing import Any

from ui.client import ModelCard

# GGUF file types as llama.cpp names them (Q4_1, Q4_K_M, IQ3_XXS, F16, BF16, ...).
_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d+(?:_[0-9A-Z]+)*|BF16|F16|F32)(?![A-Za-z0-9])", re.I)


def quantisation(meta: dict[str, Any]) -> str:
    """The file type from llama.cpp's model description ("llama 135M Q4_1"), else the file name."""
    for text in (str(meta.get("description", "")), str(meta.get("file_name", ""))):
        found = _QUANT.findall(text)
        if found:
            return str(found[-1]).upper()
    return "unknown"


def _size(n_bytes: Any) -> str:
    """Bytes as MiB/GiB."""
    if not isinstance(n_bytes, int | float):
        return "?"
    mib = n_bytes / 2**20
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.1f} MiB"


def facts(card: ModelCard) -> dict[str, str]:
    """What the panel says about one model, by label."""
    meta = card.meta
    params = meta.get("n_params")
    return {
        "Model": f"`{card.id}`",
        "Quantisation": quantisation(meta),
        "Context": f"{card.n_ctx} tokens per request (trained on {meta.get('n_ctx_train', '?')})",
        "Slots": f"{meta.get('parallel', '?')} at once (queue {meta.get('max_queue', '?')})",
        "Parameters": f"{params / 1e6:.0f} M" if isinstance(params, int | float) else "?",
        "GPU layers": str(meta.get("n_gpu_layers", "?")),
        "KV cache": f"{meta.get('ctx_size', '?')} cells (K {meta.get('cache_type_k', '?')}, "
        f"V {meta.get('cache_type_v', '?')})",
        "File": f"`{meta.get('file_name', '?')}` ({_size(meta.get('file_size'))})",
        "SHA-256": f"`{meta.get('file_sha256', '?')}`",
    }


def describe(card: ModelCard | None) -> str:
    """The panel's Markdown: the short facts on one line, the file and its hash on the next."""
    if card is None:
        return "*No model: the server is not reachable or offers none.*"
    found = [f"**{k}:** {v}" for k, v in facts(card).items()]
    return " · ".join(found[:6]) + "  \n" + " · ".join(found[6:])
