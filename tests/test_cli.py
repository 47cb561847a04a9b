"""The command line: text out, one-line errors, non-zero exits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env=os.environ | (env or {}), timeout=600)


def llaf(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run("-m", "llaf.cli", *args, stdin=stdin)


def test_generate_streams_the_default_model(backend: str) -> None:
    out = llaf("generate", "The capital of France is", "-n", "6", "--backend", backend)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("The capital of France is Paris")


def test_chat_answers_and_ends_on_eof(backend: str) -> None:
    out = llaf("chat", "--backend", backend, "-n", "24", stdin="What is the capital of France?\n")
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "x", "--model", "./missing.gguf"], "llaf: no such file or directory: ./missing.gguf"),
        (["generate", "x", "-n", "-1"], "llaf: max_new_tokens must not be negative, got -1"),
        (["generate", "x", "--backend", "fortran"],
         "llaf: unknown backend 'fortran': choose one of pyopencl, c, multicore, opencl, cuda"),
        (["generate", "x", "--context", "0"], "llaf: the context length must be positive, got 0"),
        (["generate", "x " * 300, "--context", "64", "-n", "1"],
         "llaf: 301 prompt tokens + 1 new tokens exceed the context length 64"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args: list[str], message: str) -> None:
    out = llaf(*args)
    assert out.returncode == 1
    assert out.stderr.strip() == message


def test_gpt2_example_without_weights_says_how_to_get_them(tmp_path: Path) -> None:
    out = run("examples/gpt2/run.py", "Hello", "--cnt", "3",
              env={"LLAF_CACHE": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
                   "TIKTOKEN_CACHE_DIR": str(ROOT / ".cache" / "tiktoken")})
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run.py: no weights for 'gpt2'")
    assert "llaf.init('gpt2')" in lines[0]


def test_gpt2_example_runs_from_a_weight_file(tmp_path: Path, backend: str) -> None:
    from llaf.weights import from_transformers, save

    from .conftest import random_gpt2

    path = save(from_transformers(random_gpt2(5), progress=False), tmp_path / "gpt2.safetensors")
    out = run("examples/gpt2/run.py", "Hello", "--name", str(path), "--cnt", "5", "--backend", backend, "--bench")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Hello")
    assert "llaf / transformers speed:" in out.stdout and "same tokens: True" in out.stdout
