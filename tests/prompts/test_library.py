"""The system-prompt library: the bundled prompts load, broken files are refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompts.library import SYSTEM_DIR, PromptLibraryError, load_library, load_prompt


def test_bundled_prompts_load_with_names_matching_files() -> None:
    """Every bundled prompt loads, named after its file, with a description, text and version."""
    library = load_library()
    assert len(library) >= 4
    assert sorted(library) == sorted(p.stem for p in SYSTEM_DIR.glob("*.yaml"))
    for prompt in library.values():
        assert prompt.description and prompt.text
        assert len(prompt.version) == 12


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    """The version hashes the prompt text: stable, and blind to the description."""
    path = tmp_path / "demo.yaml"
    path.write_text("name: demo\ndescription: d\ntext: Be brief.\n")
    first = load_prompt(path).version
    assert load_prompt(path).version == first
    path.write_text("name: demo\ndescription: another description\ntext: Be brief.\n")
    assert load_prompt(path).version == first  # the description is not part of the prompt
    path.write_text("name: demo\ndescription: d\ntext: Be very brief.\n")
    assert load_prompt(path).version != first


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("name: broken\ndescription: d\n", "text: Field required"),
        ("name: broken\ndescription: d\ntext: t\nextra: 1\n", "extra: Extra inputs"),
        ("name: other\ndescription: d\ntext: t\n", "must match the file name"),
        ("name: broken\ndescription: ''\ntext: t\n", "description: String should have at least"),
        ("- just\n- a list\n", "expected a mapping"),
        ("name: [unclosed\n", "cannot read YAML"),
    ],
)
def test_broken_files_are_refused_naming_file_and_field(
    tmp_path: Path, content: str, reason: str
) -> None:
    """A broken prompt file is refused with the file and the faulty field named."""
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    with pytest.raises(PromptLibraryError) as info:
        load_prompt(path)
    assert str(path) in str(info.value)
    assert reason in str(info.value)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    """A folder without prompt files is an error, not an empty library."""
    with pytest.raises(PromptLibraryError, match=r"no \*\.yaml prompt files"):
        load_library(tmp_path)
