"""The system-prompt library: one YAML file per prompt (name, description, text), validated."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SYSTEM_DIR = Path(__file__).resolve().parent / "system"


class PromptLibraryError(ValueError):
    """A prompt file that is missing, malformed or inconsistent."""


class SystemPrompt(BaseModel):
    """One system prompt from the library."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    description: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)

    @property
    def version(self) -> str:
        """Content hash of name and text: changes whenever the prompt does."""
        return hashlib.sha256(f"{self.name}\n{self.text}".encode()).hexdigest()[:12]


def load_prompt(path: Path) -> SystemPrompt:
    """Read and validate one prompt file; its name must match the file name."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PromptLibraryError(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PromptLibraryError(f"{path}: expected a mapping with name, description, text")
    try:
        prompt = SystemPrompt.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise PromptLibraryError(f"{path}: {problems}") from exc
    if prompt.name != path.stem:
        raise PromptLibraryError(f"{path}: name {prompt.name!r} must match the file name")
    return prompt


def load_library(folder: Path = SYSTEM_DIR) -> dict[str, SystemPrompt]:
    """Every prompt in `folder`, by name, sorted by name."""
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise PromptLibraryError(f"{folder}: no *.yaml prompt files")
    return {p.name: p for p in map(load_prompt, files)}
