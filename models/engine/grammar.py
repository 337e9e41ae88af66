"""GBNF grammars that force JSON output, from JSON Schemas bounded before conversion."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from models.errors import InvalidRequest

PARAM = "response_format"
_QUANTIFIER = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")
_COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems")


@dataclass(frozen=True)
class SchemaLimits:
    """Bounds a JSON Schema must respect before it is turned into a grammar."""

    max_depth: int = 16
    max_repeat: int = 256
    max_enum: int = 256
    max_properties: int = 128
    max_schema_bytes: int = 65_536
    max_grammar_bytes: int = 262_144


LIMITS = SchemaLimits()
JSON_OBJECT_SCHEMA = '{"type": "object"}'


def canonical_schema(schema: dict[str, Any]) -> str:
    """The schema as compact JSON text, key order kept (the cache key of its grammar)."""
    return json.dumps(schema, separators=(",", ":"))


def _too_big(keyword: str, value: int, limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"response_format.json_schema: '{keyword}' is {value}, more than this server's limit "
        f"of {limit}; simplify the schema.",
        PARAM,
    )


def _check_node(node: Any, depth: int, limits: SchemaLimits) -> None:
    """Walk one schema node (and its children) against the limits."""
    if depth > limits.max_depth:
        raise _too_big("nesting depth", depth, limits.max_depth)
    if isinstance(node, list):
        for item in node:
            _check_node(item, depth + 1, limits)
        return
    if not isinstance(node, dict):
        return
    for keyword in _COUNT_KEYWORDS:
        value = node.get(keyword)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if value > limits.max_repeat:
            raise _too_big(keyword, int(value), limits.max_repeat)
    for keyword in ("enum", "anyOf", "oneOf", "allOf"):
        values = node.get(keyword)
        if isinstance(values, list) and len(values) > limits.max_enum:
            raise _too_big(f"{keyword} size", len(values), limits.max_enum)
    properties = node.get("properties")
    if isinstance(properties, dict) and len(properties) > limits.max_properties:
        raise _too_big("properties count", len(properties), limits.max_properties)
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        for low, high in _QUANTIFIER.findall(pattern):
            largest = max(int(low), int(high) if high else 0)
            if largest > limits.max_repeat:
                raise _too_big("pattern repetition", largest, limits.max_repeat)
    for value in node.values():
        if isinstance(value, dict | list):
            _check_node(value, depth + 1, limits)


def check_schema(schema_text: str, limits: SchemaLimits = LIMITS) -> dict[str, Any]:
    """Parse a schema and refuse one too large or too deep to become a grammar safely."""
    if len(schema_text) > limits.max_schema_bytes:
        raise _too_big("schema size (bytes)", len(schema_text), limits.max_schema_bytes)
    schema = json.loads(schema_text)
    if not isinstance(schema, dict):
        raise InvalidRequest("response_format.json_schema.schema must be an object", PARAM)
    _check_node(schema, 1, limits)
    return schema


@functools.lru_cache(maxsize=256)
def schema_grammar(schema_text: str) -> str:
    """The GBNF grammar for a canonical schema text (bounded first; cached by content)."""
    schema = check_schema(schema_text)
    try:
        grammar = json_schema_to_gbnf(json.dumps(schema))
    except RecursionError as exc:
        raise _too_big("nesting depth", LIMITS.max_depth + 1, LIMITS.max_depth) from exc
    except Exception as exc:  # the converter raises many kinds for unsupported schemas
        raise InvalidRequest(
            f"response_format.json_schema could not be used: {exc}", PARAM
        ) from exc
    if len(grammar) > LIMITS.max_grammar_bytes:
        raise _too_big("grammar size (bytes)", len(grammar), LIMITS.max_grammar_bytes)
    return grammar
