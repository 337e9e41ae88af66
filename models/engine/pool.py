"""The loaded engines of a server, by model id and alias."""

from __future__ import annotations

import logging

from models.catalog import ModelSpec
from models.engine.llama_engine import EngineConfig, LlamaEngine
from models.errors import ModelNotFound

log = logging.getLogger(__name__)


class EnginePool:
    """Loads every model of the catalog and finds an engine by name."""

    def __init__(self, specs: list[ModelSpec], config: EngineConfig, default_model: str) -> None:
        for spec in specs:
            spec.gguf_path()  # fail fast on a missing file, before any weights load
        self.specs = specs
        self.config = config
        self.default_model = default_model
        self.engines: dict[str, LlamaEngine] = {}

    def load(self) -> None:
        """Load the weights of every model (slow: run off the event loop)."""
        for spec in self.specs:
            engine = LlamaEngine(spec, self.config)
            for name in (spec.id, *spec.aliases):
                self.engines[name] = engine

    def get(self, name: str | None) -> LlamaEngine:
        """The engine serving `name` (or the default model)."""
        key = name or self.default_model
        engine = self.engines.get(key)
        if engine is None and name is None and self.engines:
            engine = self.engines[self.specs[0].id]
        if engine is None:
            known = ", ".join(sorted(self.engines)) or "none loaded"
            raise ModelNotFound(f"The model {key!r} does not exist. Available models: {known}.")
        return engine

    def unique(self) -> list[LlamaEngine]:
        """Each loaded engine once."""
        return list({id(e): e for e in self.engines.values()}.values())

    def close(self) -> None:
        """Stop every engine."""
        for engine in self.unique():
            engine.close()
        self.engines.clear()
