"""src/llm.fut's entry points are written from llaf's tables (llaf/entries.py)."""

from __future__ import annotations

from llaf import entries


def test_llm_fut_entry_points_are_current() -> None:
    assert entries.LLM.read_text() == entries.source(), "run `python -m llaf.entries` to rewrite src/llm.fut"


def test_train_fut_entry_points_are_current() -> None:
    assert entries.TRAIN.read_text() == entries.source(entries.TRAIN), \
        "run `python -m llaf.entries` to rewrite src/train.fut"


def test_panel_types_follow_the_storage_table() -> None:
    assert entries.panel_types("q4") == ["[16][P]u8", "[P]u16", "[P]u16"]  # codes; scale and offset as half bits
    assert entries.panel_types("f16") == ["[32][P]u16"]
