"""`llaf bench-serve` at a tiny size, llaf alone (no llama.cpp): its table,
JSON and plot. Its figures are not checked, only their form and sums."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SERVER_BACKEND

MAX_TOKENS = 3


def bench_serve(out_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`llaf bench-serve` with llaf alone, a batch of 2 and `args`: its output and JSON."""
    out = subprocess.run([sys.executable, "-m", "llaf.cli", "bench-serve", "--peer", "none", "--backend",
                          SERVER_BACKEND, *args, "--max-tokens", str(MAX_TOKENS), "--out", str(out_dir)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out, json.loads((out_dir / "serve-bench.json").read_text())


def test_bench_serve_writes_its_table_json_and_plot(tmp_path: Path) -> None:
    out, result = bench_serve(tmp_path, "--clients", "1,2", "--max-batch", "2", "--requests", "2")
    assert result["command"] == (f"llaf bench-serve --peer none --backend {SERVER_BACKEND} --clients 1,2 --max-batch 2 "
                                 f"--requests 2 --max-tokens {MAX_TOKENS} --out {tmp_path}")
    assert result["settings"]["max_batch"] == 2 and result["settings"]["temperature"] == 0
    assert result["bandwidth_gb_s"] > 0
    assert f"{MAX_TOKENS} tokens a request at temperature 0, 2 requests a client" in out.stdout
    assert list(result["servers"]) == ["llaf"]
    levels = result["servers"]["llaf"]
    assert list(levels) == ["1", "2"]
    for clients, level in levels.items():
        # Greedy story openings: every request runs to its token limit.
        assert level["requests"] == 2 * int(clients)
        assert level["tokens"] == level["requests"] * MAX_TOKENS
        assert level["tok_s"] == level["tokens"] / level["seconds"]
        assert 0 < level["ttft_p50_s"] <= level["ttft_p95_s"] < level["seconds"]
        assert 0 < level["tpot_p50_s"] <= level["tpot_p95_s"]
        assert level["rounds_tok_s"] == [level["tok_s"]]
    assert result["ratios"] == {"llaf_1_over_1": 1.0, "llaf_2_over_1": levels["2"]["tok_s"] / levels["1"]["tok_s"]}
    assert (tmp_path / "serve-bench.png").read_bytes().startswith(b"\x89PNG")
    rows = [r for r in map(str.split, out.stdout.splitlines()) if r[:1] == ["llaf"] and r[1].isdigit()]
    assert [(r[1], float(r[2])) for r in rows] == [(c, round(levels[c]["tok_s"], 1)) for c in levels]


def test_bench_serve_rounds_take_turns_and_report_medians(tmp_path: Path) -> None:
    out, result = bench_serve(tmp_path, "--clients", "2,1", "--max-batch", "2", "--rounds", "3")
    assert result["settings"]["rounds"] == 3
    assert "1 request a client, 3 rounds (medians)" in out.stdout
    # the levels take turns, round after round
    progress = [line.split()[1] for line in out.stderr.splitlines() if line.startswith("  llaf,")]
    assert progress == ["2", "1"] * 3
    rounds = {c: [float(line.split()[3]) for line in out.stderr.splitlines()
                  if line.startswith(f"  llaf, {c:>2} client") and "of 3)" in line] for c in ("1", "2")}
    levels = result["servers"]["llaf"]
    for clients, level in levels.items():
        assert [round(x, 1) for x in level["rounds_tok_s"]] == rounds[clients]
        assert level["tok_s"] == sorted(level["rounds_tok_s"])[1]  # the median round's own figures
        assert level["tokens"] == int(clients) * MAX_TOKENS
        assert level["tok_s"] == level["tokens"] / level["seconds"]
    # each round's own ratio, then their median
    own = sorted(a / b for a, b in zip(levels["2"]["rounds_tok_s"], levels["1"]["rounds_tok_s"], strict=True))
    assert result["ratios"] == {"llaf_2_over_1": own[1], "llaf_1_over_1": 1.0}


@pytest.mark.parametrize(("args", "status", "last_line"), [
    (["--backend", "nope"], 1, "llaf: unknown backend 'nope': choose one of pyopencl, c, multicore, opencl, cuda"),
    (["--model", "/nonexistent/model.gguf"], 1, "llaf: no such file or directory: /nonexistent/model.gguf"),
    (["--backend", "cuda"], 1, "llaf: backend cuda is not built (no {cuda}/_llm*.so): run `make BACKEND=cuda`"),
    (["--temperature", "-1"], 2, "llaf bench-serve: error: --temperature must be a number >= 0, got -1.0"),
    (["--temperature", "nan"], 2, "llaf bench-serve: error: --temperature must be a number >= 0, got nan"),
    (["--max-batch", "0"], 2, "llaf bench-serve: error: --clients, --requests, --rounds, --max-tokens, --threads "
                              "and --max-batch must be at least 1"),
    (["--rounds", "0"], 2, "llaf bench-serve: error: --clients, --requests, --rounds, --max-tokens, --threads "
                           "and --max-batch must be at least 1"),
])
def test_bench_serve_bad_input_is_said_before_a_server_starts(tmp_path: Path, args: list[str], status: int,
                                                               last_line: str) -> None:
    # (a server started on them failed, and was reported as crashed with its output in a log)
    from llaf.backend import build_dir

    if "cuda" in args and (build_dir("cuda") / ".built").exists():
        pytest.skip("the cuda backend is built here")
    last_line = last_line.format(cuda=build_dir("cuda"))
    out = subprocess.run([sys.executable, "-m", "llaf.cli", "bench-serve", "--peer", "none", *args,
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stderr.splitlines()[-1]) == (status, last_line)
    assert "crashed" not in out.stderr and not (tmp_path / "serve-bench.json").exists()
