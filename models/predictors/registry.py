"""The servable predictors: each one's MLflow champion, or else its trained artefact."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from sklearn.pipeline import Pipeline
from threadpoolctl import ThreadpoolController

from models.errors import ModelNotFound
from models.predictors.champions import ALIAS, CARD_FILE, MODEL_FILE, fetch_in_child
from models.predictors.schema import to_frame, validate_records
from models.predictors.tracking import store_exists

log = logging.getLogger(__name__)

PREDICTOR_NAMES: tuple[str, ...] = ("iris", "income", "churn")
# The only types, beyond skops' own defaults, a model file may hold: the ones our pipelines
# contain. The list lives here, in the code, never in the (possibly remote) model files.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]

Status = Literal["loading", "ready", "not_trained", "failed", "disabled"]


class UntrustedModel(RuntimeError):
    """A model file the server will not load: not skops, or a type outside the allow-list."""


@dataclass(frozen=True)
class PredictorState:
    """One predictor's state for readiness: status, a readable message, what is served."""

    name: str
    status: Status
    message: str
    version: str | None = None
    source: str | None = None

    @property
    def ready(self) -> bool:
        """Nothing to wait for: loaded, or deliberately absent (not trained / disabled)."""
        return self.status in ("ready", "not_trained", "disabled")

    def as_dict(self) -> dict[str, Any]:
        """The state as JSON for a health body."""
        return {
            "name": self.name,
            "status": self.status,
            "ready": self.ready,
            "message": self.message,
            "version": self.version,
            "source": self.source,
        }


class _TorchKeptOut:
    """A meta-path finder that fails `import torch` in one thread (others import as usual)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """Refuse torch and its submodules in the importing thread; leave the rest to others."""
        if name.partition(".")[0] == "torch" and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{name} is kept out while skops loads", name=name)
        return None


def import_skops() -> ModuleType:
    """skops.io, imported without torch.

    On import skops lists sklearn's estimators by importing every sklearn module, and one of
    them (sklearn.externals.array_api_compat.torch) imports torch: ~180 MB of RSS in a server
    that never uses it. pkgutil's walk skips a module whose import fails, so the listing is the
    same without it; /v1/embeddings and the drift harness still import torch when they need it.
    """
    if "skops.io" not in sys.modules:
        finder = _TorchKeptOut()
        sys.meta_path.insert(0, finder)
        try:
            import skops.io  # noqa: F401
        finally:
            sys.meta_path.remove(finder)
    return sys.modules["skops.io"]


def load_skops(path: Path) -> Pipeline:
    """A pipeline from a skops file, allowing skops' defaults plus SKOPS_TRUSTED_TYPES only."""
    skops_io = import_skops()
    refused = sorted(set(skops_io.get_untrusted_types(file=path)) - set(SKOPS_TRUSTED_TYPES))
    if refused:
        raise UntrustedModel(
            f"{path.name} holds types outside the allow-list: {', '.join(refused)}"
        )
    model = skops_io.load(path, trusted=SKOPS_TRUSTED_TYPES)
    if not isinstance(model, Pipeline):
        raise UntrustedModel(f"{path.name} holds a {type(model).__name__}, not a Pipeline")
    return model


_threads = ThreadpoolController()


@dataclass(frozen=True)
class Predictor:
    """One loaded predictor: its pipeline, input schema, classes and held-out metrics."""

    name: str
    version: str
    source: str  # "mlflow" or "artefact"
    pipeline: Pipeline
    input_schema: dict[str, Any]
    classes: list[str]
    metrics: dict[str, float]

    def card(self) -> dict[str, Any]:
        """The public description served by GET /v1/predictors."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "input_schema": self.input_schema,
            "classes": self.classes,
            "metrics": self.metrics,
        }

    def validate(self, records: list[Any]) -> list[dict[str, Any]]:
        """The records checked against the input schema (InvalidInput names the bad field)."""
        return validate_records(self.input_schema, records)

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Label and class probabilities for validated records (one OpenMP thread per call)."""
        frame = to_frame(self.input_schema, records)
        with _threads.limit(limits=1, user_api="openmp"):
            proba = self.pipeline.predict_proba(frame)
        classes = [str(c) for c in self.pipeline.classes_]
        return [
            {
                "label": classes[int(row.argmax())],
                "probabilities": dict(zip(classes, row.tolist(), strict=True)),
            }
            for row in proba
        ]


def _fetch_champions(tracking_uri: str, folder: Path) -> dict[str, dict[str, Any]]:
    """Every champion fetched into folder by a child process; a failed fetch fails each one."""
    try:
        return fetch_in_child(tracking_uri, list(PREDICTOR_NAMES), folder)
    except (RuntimeError, ValueError) as exc:
        return {name: {"error": str(exc)} for name in PREDICTOR_NAMES}


def _from_mlflow(name: str, fetched: dict[str, Any], folder: Path) -> Predictor | None:
    """The champion fetched into folder/name, or None when MLflow has none."""
    if fetched.get("missing"):
        return None
    if "version" not in fetched:
        raise RuntimeError(fetched.get("error", "the champion was not fetched"))
    return _from_files(name, folder / name, str(fetched["version"]), "mlflow")


def _from_artefact(name: str, predictors_dir: Path) -> Predictor | None:
    """The artefact `myllama train` saved (a skops file and its card), or None."""
    folder = predictors_dir / name
    if not (folder / CARD_FILE).is_file():
        return None
    if not (folder / MODEL_FILE).is_file():
        raise UntrustedModel(
            f"{folder} has no {MODEL_FILE} (an older pickle is never loaded): "
            f"retrain it with `myllama train {name}`"
        )
    return _from_files(name, folder, None, "artefact")


def _from_files(name: str, folder: Path, version: str | None, source: str) -> Predictor:
    """A predictor from a folder holding its card and skops file (version: the card's if None)."""
    card = json.loads((folder / CARD_FILE).read_text())
    return Predictor(
        name,
        version if version is not None else str(card["version"]),
        source,
        load_skops(folder / MODEL_FILE),
        card["input_schema"],
        card["classes"],
        card["metrics"],
    )


def _load_one(
    name: str, champions: tuple[dict[str, Any], Path] | None, predictors_dir: Path
) -> tuple[Predictor | None, PredictorState]:
    """One predictor: its champion, else its artefact; a broken one is logged, never raised."""
    problem = ""
    if champions is not None:
        try:
            found = _from_mlflow(name, champions[0].get(name, {}), champions[1])
        except Exception as exc:
            log.exception("could not load %s@%s from MLflow; trying the artefact", name, ALIAS)
            problem = f"the MLflow champion could not be loaded ({exc}); "
        else:
            if found is not None:
                return found, _ready(found, "")
            log.info("MLflow has no %s@%s; trying the artefact", name, ALIAS)
    try:
        found = _from_artefact(name, predictors_dir)
    except Exception as exc:
        log.exception("could not load the %s artefact from %s", name, predictors_dir / name)
        return None, PredictorState(name, "failed", f"{problem}the artefact failed: {exc}")
    if found is None and problem:
        return None, PredictorState(name, "failed", f"{problem}and there is no artefact")
    if found is None:
        log.warning("predictor %s is not trained; run `myllama train %s`", name, name)
        return None, PredictorState(name, "not_trained", f"run `myllama train {name}`")
    return found, _ready(found, problem)


def _ready(predictor: Predictor, problem: str) -> PredictorState:
    """The state of a loaded predictor (saying so if it is a fallback)."""
    message = f"{problem}serving v{predictor.version} from {predictor.source}"
    return PredictorState(predictor.name, "ready", message, predictor.version, predictor.source)


def predictor_states(
    registry: PredictorRegistry | None, load_error: str | None = None
) -> list[PredictorState]:
    """Every predictor's state: loading until the registry exists, failed if loading raised."""
    if load_error is not None:
        return [PredictorState(n, "failed", load_error) for n in PREDICTOR_NAMES]
    if registry is None:
        return [PredictorState(n, "loading", "loading") for n in PREDICTOR_NAMES]
    return registry.states()


class PredictorRegistry:
    """The loaded predictors by name; lookups fail with ModelNotFound (404)."""

    def __init__(
        self,
        predictors: dict[str, Predictor],
        enabled: bool = True,
        states: dict[str, PredictorState] | None = None,
    ) -> None:
        self.predictors = predictors
        self.enabled = enabled
        self._states = states or {}

    @classmethod
    def load(cls, tracking_uri: str, predictors_dir: Path) -> PredictorRegistry:
        """Each predictor's MLflow champion, else its artefact (said in the log), else nothing."""
        use_mlflow = store_exists(tracking_uri)
        if not use_mlflow:
            log.info("no MLflow store at %s; looking for artefacts only", tracking_uri)
        loaded: dict[str, Predictor] = {}
        states: dict[str, PredictorState] = {}
        with tempfile.TemporaryDirectory(prefix="champions-") as tmp:
            folder = Path(tmp)
            champions = (_fetch_champions(tracking_uri, folder), folder) if use_mlflow else None
            for name in PREDICTOR_NAMES:
                found, states[name] = _load_one(name, champions, Path(predictors_dir))
                if found is not None:
                    loaded[name] = found
                    log.info("predictor %s v%s loaded from %s", name, found.version, found.source)
        return cls(loaded, states=states)

    @classmethod
    def disabled(cls) -> PredictorRegistry:
        """An empty registry for a server started with --no-load-predictors."""
        return cls({}, enabled=False)

    def states(self) -> list[PredictorState]:
        """Every predictor's state (ready / not_trained / failed / disabled, with a message)."""
        if not self.enabled:
            return [PredictorState(n, "disabled", "--no-load-predictors") for n in PREDICTOR_NAMES]
        return [
            self._states.get(n)
            or (
                _ready(self.predictors[n], "")
                if n in self.predictors
                else PredictorState(n, "not_trained", f"run `myllama train {n}`")
            )
            for n in PREDICTOR_NAMES
        ]

    def cards(self) -> list[dict[str, Any]]:
        """The public description of every loaded predictor."""
        return [p.card() for p in self.predictors.values()]

    def get(self, name: str) -> Predictor:
        """One predictor, or ModelNotFound saying why."""
        if name in self.predictors:
            return self.predictors[name]
        if name in PREDICTOR_NAMES and not self.enabled:
            raise ModelNotFound(
                f"The predictor {name!r} is not loaded: the server runs with --no-load-predictors"
            )
        if name in PREDICTOR_NAMES:
            raise ModelNotFound(
                f"The predictor {name!r} is not trained yet: run `myllama train {name}`"
            )
        raise ModelNotFound(
            f"No predictor named {name!r}; the predictors are: {', '.join(PREDICTOR_NAMES)}"
        )
