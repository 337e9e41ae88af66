"""Prompt sets: the shipped ones are valid and varied; bad files fail with the line at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prompts.sets import PromptSetError, available_sets, load_prompt_set


def _write(path: Path, rows: list[object]) -> Path:
    """A JSONL file with one row per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_shipped_sets_hold_at_least_fifty_distinct_prompts() -> None:
    """The shipped sets load and hold at least 50 distinct prompts in all."""
    sets = [load_prompt_set(name) for name in available_sets()]
    assert {"general", "smoke"} <= {s.name for s in sets}
    prompts = [p for s in sets for p in s.prompts]
    assert len(prompts) >= 50
    texts = {p.messages[-1]["content"] for p in prompts}
    assert len(texts) == len(prompts)
    general = load_prompt_set("general")
    kinds = {p.id.split("-")[0] for p in general.prompts}
    assert {"fact", "howto", "sum", "code", "refuse"} <= kinds
    assert all(len(s.sha256) == 64 for s in sets)


def test_hash_follows_content_and_a_limited_set_hashes_differently(tmp_path: Path) -> None:
    """The hash changes with the file; head(n) gets its own stable hash, head(all) keeps it."""
    row = {"id": "a", "messages": [{"role": "user", "content": "Hi"}]}
    first = load_prompt_set(_write(tmp_path / "x.jsonl", [row, {**row, "id": "b"}]))
    assert first.name == "x" and len(first) == 2
    limited = first.head(1)
    assert len(limited) == 1 and limited.name == first.name and len(limited.sha256) == 64
    assert limited.sha256 != first.sha256 and limited.sha256 == first.head(1).sha256
    assert first.head(2).sha256 == first.head(None).sha256 == first.sha256
    changed = load_prompt_set(_write(tmp_path / "x.jsonl", [row, {**row, "id": "c"}]))
    assert changed.sha256 != first.sha256


def test_system_flag_replaces_or_adds_the_system_message() -> None:
    """--system replaces an existing system message or adds one; None keeps them."""
    prompt = load_prompt_set("smoke").prompts[0]
    assert prompt.messages[0]["role"] == "system"
    replaced = prompt.with_system("Be brief.")
    assert replaced[0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in replaced] == ["system", "user"]
    added = load_prompt_set("general").prompts[0].with_system("Be brief.")
    assert [m["role"] for m in added] == ["system", "user"]
    assert prompt.with_system(None) == [dict(m) for m in prompt.messages]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["not an object"], "line 1: each line must be a JSON object"),
        ([{"id": "a", "messages": []}], "'messages' must be a non-empty list"),
        ([{"id": "", "messages": [{"role": "user", "content": "x"}]}], "'id'"),
        ([{"id": "a", "messages": [{"role": "robot", "content": "x"}]}], "role must be"),
        ([{"id": "a", "messages": [{"role": "user", "content": " "}]}], "non-empty string"),
        ([{"id": "a", "messages": [{"role": "assistant", "content": "x"}]}], "last message"),
        (
            [{"id": "a", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}],
            "'max_tokens' must be a positive integer",
        ),
        ([{"id": "a", "messages": [{"role": "user", "content": "x"}], "extra": 1}], "unknown"),
        (
            [
                {"id": "a", "messages": [{"role": "user", "content": "x"}]},
                {"id": "a", "messages": [{"role": "user", "content": "y"}]},
            ],
            "line 2: duplicate id 'a'",
        ),
    ],
)
def test_invalid_lines_are_rejected(tmp_path: Path, rows: list[object], message: str) -> None:
    """Each malformed line is rejected with its line number and reason."""
    with pytest.raises(PromptSetError, match=message):
        load_prompt_set(_write(tmp_path / "bad.jsonl", rows))


def test_bad_json_empty_file_and_unknown_set(tmp_path: Path) -> None:
    """Broken JSON, an empty file and an unknown set name fail clearly."""
    (tmp_path / "broken.jsonl").write_text('{"id": "a",\n')
    with pytest.raises(PromptSetError, match="line 1: not valid JSON"):
        load_prompt_set(tmp_path / "broken.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PromptSetError, match="no prompts"):
        load_prompt_set(tmp_path / "empty.jsonl")
    with pytest.raises(PromptSetError, match="one of: general"):
        load_prompt_set("no-such-set")
