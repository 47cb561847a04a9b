"""Futhark's profile of the engine's operations (llaf/profile.py,
``LLAF_PROFILE=1``): a report's events summed by operation, and a multicore
engine's own profile of a few decode steps."""

from __future__ import annotations

import json

import numpy as np
import pytest

import llaf
from llaf.errors import LlafError
from llaf.profile import Operation, operations, table

from .conftest import BACKENDS_UNDER_TEST, random_llama

# A report as the multicore runtime writes it: an operation's whole event
# (`..._task_N`) and its threads' parts (`parloop`, not counted again).
REPORT = json.dumps({"memory": {"default space": 1}, "events": [
    {"name": "futhark_mc_segmap_task_7", "duration": 120.0, "details": {},
     "provenance": "build/multicore/src/llama.fut:212:12-216:52->build/multicore/src/matrix.fut:522:59-81"},
    {"name": "futhark_mc_segmap_parloop_8", "duration": 60.0, "details": {},
     "provenance": "build/multicore/src/llama.fut:212:12-216:52->build/multicore/src/matrix.fut:522:59-81"},
    {"name": "futhark_mc_segmap_task_7", "duration": 100.0, "details": {},
     "provenance": "build/multicore/src/llama.fut:212:12-216:52->build/multicore/src/matrix.fut:522:59-81"},
    {"name": "futhark_mc_copy_31_task_9", "duration": 500.0, "details": {},
     "provenance": "build/multicore/src/llm.fut:446:83-452:37->build/multicore/src/llama.fut:250:5-104"},
    {"name": "futhark_mc_segred_nested_task_3", "duration": 2.5, "details": {}, "provenance": "unknown"},
]})


def test_a_report_is_summed_by_operation_slowest_first() -> None:
    assert operations(REPORT) == [
        Operation("futhark_mc_copy_31_task_9", "llama.fut:250:5-104", "llm.fut:446:83-452:37", 1, 500e-6),
        Operation("futhark_mc_segmap_task_7", "matrix.fut:522:59-81", "llama.fut:212:12-216:52", 2, 220e-6),
        Operation("futhark_mc_segred_nested_task_3", "unknown", "unknown", 1, 2.5e-6),
    ]
    assert [op.kind for op in operations(REPORT)] == ["copy", "segmap", "segred nested"]
    assert table(operations(REPORT), per=2, top=2).splitlines() == [
        "       ms   calls  where (what, via)",
        "    0.250     0.5  llama.fut:250:5-104 (copy, via llm.fut:446:83-452:37)",
        "    0.110     1.0  matrix.fut:522:59-81 (segmap, via llama.fut:212:12-216:52)",
        "    0.361          all operations",
    ]


def tiny_llama() -> object:
    return random_llama(3, vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)


@pytest.mark.skipif("multicore" not in BACKENDS_UNDER_TEST, reason="the multicore backend is not under test")
def test_a_multicore_engine_profiles_its_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAF_PROFILE", "1")
    params = llaf.init(tiny_llama(), backend="multicore", progress=False)
    _, cache = llaf.prefill(params, [[1, 2, 3, 4, 5], [6, 7, 8]], capacity=32)
    params.engine.profile()  # the prefill's, dropped
    for i in range(3):
        llaf.step(cache, [10 + i, 20 + i])
    ops = params.engine.profile()
    assert ops and all(op.calls > 0 and op.seconds >= 0 for op in ops)
    assert [op.seconds for op in ops] == sorted((op.seconds for op in ops), reverse=True)
    # the layers' products and the attention, by the lines they compute
    wheres = {op.where.split(":")[0] for op in ops}
    assert {"matrix.fut", "attention.fut"} <= wheres, wheres
    assert params.engine.profile() == []  # what was recorded is reported once


def test_an_engine_made_without_it_has_no_profile() -> None:
    params = llaf.init(tiny_llama(), backend=BACKENDS_UNDER_TEST[0], progress=False)
    with pytest.raises(LlafError, match=r"^this engine records no profile: make it with LLAF_PROFILE=1 in the "
                                        r"environment \(multicore backend\)$"):
        params.engine.profile()


@pytest.mark.skipif("c" not in BACKENDS_UNDER_TEST, reason="the c backend is not under test")
def test_the_c_engine_refuses_to_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAF_PROFILE", "1")
    with pytest.raises(LlafError, match=r"^LLAF_PROFILE: Futhark's profile of each operation is recorded by the "
                                        r"multicore engine, not by c$"):
        llaf.init(tiny_llama(), backend="c", progress=False)


def test_profiles_are_off_for_zero_and_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("0", ""):
        monkeypatch.setenv("LLAF_PROFILE", value)
        params = llaf.init(tiny_llama(), backend=BACKENDS_UNDER_TEST[0], progress=False)
        assert not params.engine.profiling
        assert np.isfinite(llaf.prefill(params, [[1, 2, 3]], capacity=8)[0]).all()
