"""The loaded engines of a server, by model id and alias."""

from __future__ import annotations

import logging
from collections.abc import Callable

from models.catalog import ModelSpec
from models.engine.base import Engine, EngineConfig
from models.errors import ModelNotFound

log = logging.getLogger(__name__)

EngineFactory = Callable[[ModelSpec, EngineConfig], Engine]


def llama_engine(spec: ModelSpec, config: EngineConfig) -> Engine:
    """The default factory: a llama.cpp engine in this process."""
    from models.engine.llama_engine import LlamaEngine  # llama.cpp loads only when used

    return LlamaEngine(spec, config)


class EnginePool:
    """Loads every model of the catalog and finds an engine by name."""

    def __init__(
        self,
        specs: list[ModelSpec],
        config: EngineConfig,
        default_model: str,
        factory: EngineFactory = llama_engine,
    ) -> None:
        for spec in specs:
            spec.gguf_path()  # fail fast on a missing file, before any weights load
        self.factory = factory
        self.specs = specs
        self.config = config
        names = {name for spec in specs for name in (spec.id, *spec.aliases)}
        if default_model not in names:
            log.info(
                "default model %r is not served; the default is %r", default_model, specs[0].id
            )
            default_model = specs[0].id
        self.default_model = default_model
        self.engines: dict[str, Engine] = {}
        self._closed = False

    def load(self) -> None:
        """Load the weights of every model (slow: run off the event loop)."""
        for spec in self.specs:
            if self._closed:
                return
            engine = self.factory(spec, self.config)
            for name in (spec.id, *spec.aliases):
                self.engines[name] = engine

    def get(self, name: str | None) -> Engine:
        """The engine serving `name` (or the default model)."""
        key = name or self.default_model
        engine = self.engines.get(key)
        if engine is None:
            known = ", ".join(sorted(self.engines)) or "none loaded"
            raise ModelNotFound(f"The model {key!r} does not exist. Available models: {known}.")
        return engine

    def unique(self) -> list[Engine]:
        """Each loaded engine once."""
        return list({id(e): e for e in self.engines.values()}.values())

    def close(self) -> None:
        """Stop every engine (call after load() has returned)."""
        self._closed = True
        for engine in self.unique():
            engine.close()
        self.engines.clear()
