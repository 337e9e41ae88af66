"""Saved conversations: newest first, updated in place, bounded, an emptied one forgotten."""

from __future__ import annotations

from ui.conversations import MAX_SAVED, TITLE_CHARS, listing, opened, save, title


def exchange(question: str, answer: str = "ok") -> list[dict[str, str]]:
    """One user/assistant pair."""
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def test_a_new_conversation_goes_first_and_an_open_one_is_updated_in_place() -> None:
    """A new chat is saved at the front; continuing an older one moves it to the front, once."""
    saved, current = save([], None, exchange("first?"))
    saved, current = save(saved, None, exchange("second?"))
    assert listing(saved) == [["second?"], ["first?"]] and current == 0
    longer = [*opened(saved, 1), *exchange("and then?")]
    saved, current = save(saved, 1, longer)
    assert listing(saved) == [["first?"], ["second?"]] and current == 0
    assert opened(saved, 0) == longer


def test_titles_are_one_shortened_line_of_the_first_question() -> None:
    """Whitespace collapses, long questions are cut with an ellipsis."""
    assert title(exchange("  what\n is   this? ")) == "what is this?"
    long = title(exchange("word " * 40))
    assert len(long) == TITLE_CHARS and long.endswith("…")


def test_the_list_is_bounded_and_an_emptied_conversation_is_forgotten() -> None:
    """Past MAX_SAVED the oldest goes; undoing everything removes the conversation."""
    saved: list = []
    for i in range(MAX_SAVED + 3):
        saved, _ = save(saved, None, exchange(f"q{i}"))
    assert len(saved) == MAX_SAVED and listing(saved)[-1] == ["q3"]
    saved, current = save(saved, 0, [])
    assert (
        current is None
        and len(saved) == MAX_SAVED - 1
        and listing(saved)[0] == [f"q{MAX_SAVED + 1}"]
    )
    assert opened(saved, 999) == []
