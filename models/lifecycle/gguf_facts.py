"""What a GGUF file is, read from its header (the `gguf` library) and its bytes (SHA-256)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GgufFacts:
    """Size, hash, quantisation type, parameters and training context of one GGUF file."""

    path: str
    file_size: int
    sha256: str
    quantization: str
    n_params: int
    n_ctx_train: int | None
    architecture: str | None
    name: str | None

    def as_dict(self) -> dict[str, Any]:
        """The facts as plain JSON-able values."""
        return asdict(self)


def sha256(path: Path) -> str:
    """SHA-256 of a file."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _value(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def read_facts(path: Path) -> GgufFacts:
    """Read the header of `path` (memory-mapped, no weights loaded) and hash the file."""
    from gguf import GGUFReader, LlamaFileType

    reader = GGUFReader(path, "r")
    architecture = _value(reader, "general.architecture")
    file_type = _value(reader, "general.file_type")
    try:
        quantization = LlamaFileType(file_type).name.removeprefix("MOSTLY_")
    except ValueError:
        quantization = f"type {file_type}"
    if quantization == "ALL_F32":
        quantization = "F32"
    context = _value(reader, f"{architecture}.context_length") if architecture else None
    return GgufFacts(
        path=str(path),
        file_size=path.stat().st_size,
        sha256=sha256(path),
        quantization=quantization,
        n_params=int(sum(int(t.n_elements) for t in reader.tensors)),
        n_ctx_train=int(context) if context is not None else None,
        architecture=architecture,
        name=_value(reader, "general.name"),
    )
