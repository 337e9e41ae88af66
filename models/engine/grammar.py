"""GBNF grammars that force JSON output (any object, or one matching a JSON Schema)."""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from models.errors import InvalidRequest


def json_object_grammar() -> str:
    """A grammar for any JSON object, with whitespace kept short."""
    return json_schema_to_gbnf(json.dumps({"type": "object"}))


def json_schema_grammar(schema: dict[str, Any]) -> str:
    """A grammar for JSON that validates against `schema`."""
    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises many kinds for unsupported schemas
        raise InvalidRequest(
            f"response_format.json_schema could not be used: {exc}", "response_format"
        ) from exc
