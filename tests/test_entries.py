"""src/llm.fut's entry points are written from llaf's tables (llaf/entries.py)."""

from __future__ import annotations

from llaf import entries

from .conftest import ROOT


def test_llm_fut_entry_points_are_current() -> None:
    assert entries.LLM.read_text() == entries.source(), "run `python -m llaf.entries` to rewrite src/llm.fut"


def test_train_fut_entry_points_are_current() -> None:
    assert entries.TRAIN.read_text() == entries.source(entries.TRAIN), \
        "run `python -m llaf.entries` to rewrite src/train.fut"


def test_panel_types_follow_the_storage_table() -> None:
    assert entries.panel_types("q4") == ["[16][P]u8", "[P]u16", "[P]u16"]  # codes; scale and offset as half bits
    assert entries.panel_types("f16") == ["[32][P]u16"]


def test_the_browsers_program_runs_the_webassembly_products() -> None:
    """The browser's entry points (llaf/web.py) keep src/llm.fut's names and
    argument lists, over src/matrix.fut's `wasm_codes` instances: the mixed
    storage's too, with every format's."""
    from llaf import storage, web

    text = web.futhark_program("../../src/llm")
    assert "module llama_q4_wasm = llama (uniform q4_wasm_matrix q8_wasm_matrix)" in text
    assert "module llama_q8_wasm = llama (uniform q8_wasm_matrix q8_wasm_matrix)" in text
    assert "module llama_mixed_wasm = llama mixed_wasm" in text
    mixed = text[text.index("module mixed_wasm = {"):text.index("module llama_q4_wasm")]
    for f in storage.FORMATS:  # each format's products in the browser's instance, none of the native ones
        assert f"{f}_wasm_matrix.matmul" in mixed and f"{f}_matrix." not in mixed, f
    entry_lines = sorted(line.split()[1] for line in text.splitlines() if line.startswith("entry "))
    called = ("init", "cache", "run")  # what web/src/engine.js calls, with cache_grow
    assert entry_lines == sorted(["cache_grow", *(f"llama_{s}_{e}" for s in ("q4", "q8", "mixed") for e in called)])
    grow = next(line for line in text.splitlines() if line.startswith("entry cache_grow "))
    assert grow.split(" = ")[0] + " =" in (ROOT / "src" / "llm.fut").read_text()  # src/llm.fut's parameters
    for s in ("q4", "mixed"):
        native = entries.llama_section(s)
        for e in called:  # the same parameters as the native entry point's
            signature = {line for line in native.split("\n\n") if line.startswith(f"entry llama_{s}_{e} ")}
            assert signature, e
            params = next(iter(signature)).split(" =\n")[0].replace(f"llama_{s}_params", f"llama_{s}_wasm_params")
            assert params in text, (s, e)
