"""The command line: text out, one-line errors, non-zero exits."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import SERVER_BACKEND

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env=os.environ | (env or {}), timeout=600)


def llaf(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run("-m", "llaf.cli", *args, stdin=stdin)


def llaf_on_a_busy_port(*args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """`llaf *args --host 127.0.0.1 --port P` while another socket listens on
    port P: its result, and P."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        return llaf(*args, "--host", "127.0.0.1", "--port", str(port)), port


def test_generate_streams_the_default_model(backend: str) -> None:
    out = llaf("generate", "The capital of France is", "-n", "6", "--backend", backend)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("The capital of France is Paris")


def test_chat_answers_and_ends_on_eof(backend: str) -> None:
    out = llaf("chat", "--backend", backend, "-n", "24", stdin="What is the capital of France?\n")
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout


def test_generate_takes_the_sampling_flags() -> None:
    # top-k 1 leaves only the most likely token, whatever the temperature: greedy.
    out = llaf("generate", "The capital of France is", "-n", "12", "--backend", SERVER_BACKEND,
               "--temperature", "1.5", "--top-k", "1", "--top-p", "0.9", "--repetition-penalty", "1.0",
               "--seed", "4", "--stop", "\n", "--stop", ".")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "The capital of France is Paris\n"


def test_generate_keeps_the_weights_in_the_storage_asked_for() -> None:
    # SmolLM2's Q4_1 file read into f32 and kept as q4 blocks: the same greedy text.
    out = llaf("generate", "The capital of France is", "-n", "6", "--backend", SERVER_BACKEND, "--storage", "f32")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("The capital of France is Paris")
    # f16 cannot hold its Q4_1 blocks exactly: refused, so the flag is not ignored
    out = llaf("generate", "The capital of France is", "-n", "6", "--backend", SERVER_BACKEND, "--storage", "f16")
    assert out.returncode == 1
    assert re.fullmatch(r"llaf: SmolLM2-135M-Instruct\.Q4_1\.gguf: tensor '[\w.]+' of type Q(4_1|8_0) "
                        r"cannot be stored as f16 exactly", out.stderr.strip()), out.stderr
    # each tensor in its own format (the CLI's choices once lacked these two)
    for storage in ("mixed", "compact"):
        out = llaf("generate", "The capital of France is", "-n", "6", "--backend", SERVER_BACKEND,
                   "--storage", storage)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("The capital of France is Paris")


class CachedLoads:
    """llaf.generation.load, each model loaded once for the in-process runs of `main`."""

    def __init__(self) -> None:
        import llaf.generation

        self.load = llaf.generation.load
        self.models: dict[tuple[Any, ...], Any] = {}
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model: Any = None, **kwargs: Any) -> Any:
        self.calls.append({"model": model, **kwargs})
        key = (model, *sorted((k, v) for k, v in kwargs.items() if k != "progress"))
        if key not in self.models:
            self.models[key] = self.load(model, **kwargs)
        return self.models[key]


def test_each_sampling_flag_changes_what_generate_prints(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Every flag is shown to act: were it ignored, the text would be greedy's
    (or, for the seed, the same for two seeds)."""
    import llaf.generation
    from llaf import cli

    loads = CachedLoads()
    monkeypatch.setattr(llaf.generation, "load", loads)

    def generate(*flags: str) -> str:
        cli.main(["generate", "Once upon a time", "-n", "16", "--backend", SERVER_BACKEND, "--context", "64",
                  *flags])
        return capsys.readouterr().out

    greedy = generate()
    hot = ("--temperature", "1.5", "--seed", "1")
    sampled = generate(*hot)
    assert sampled != greedy and generate(*hot) == sampled                   # --temperature, --seed
    assert generate("--temperature", "1.5", "--seed", "2") != sampled       # --seed
    assert generate(*hot, "--top-k", "1") == greedy                          # --top-k: the most likely only
    assert generate(*hot, "--top-p", "0.001") == greedy                      # --top-p: likewise
    assert generate("--repetition-penalty", "5") != greedy                   # --repetition-penalty
    stop = greedy[len("Once upon a time"):].strip()[:3]
    assert generate("--stop", stop) == greedy[:greedy.index(stop, len("Once upon a time"))] + "\n"  # --stop
    assert {c["backend"] for c in loads.calls} == {SERVER_BACKEND} and {c["context"] for c in loads.calls} == {64}


def test_a_failure_of_llafs_own_is_an_internal_error(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A bug (here the engine failing) is not blamed on the input: one line
    saying it is an internal error, with its cause, and exit status 70."""
    import llaf.generation
    from llaf import EngineError, cli

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise EngineError("llama_q4_run failed: Assertion is false: index out of bounds\nbacktrace...")

    monkeypatch.setattr(llaf.generation, "load", broken)
    with pytest.raises(SystemExit) as exit:
        cli.main(["generate", "Hi"])
    assert exit.value.code == cli.INTERNAL_ERROR_EXIT == 70
    assert capsys.readouterr().err == ("llaf: internal error: EngineError: llama_q4_run failed: Assertion is false: "
                                       "index out of bounds (a bug of llaf's, not a problem with the input)\n")
    monkeypatch.setattr(llaf.generation, "load", lambda *a, **k: {}["no such key"])
    with pytest.raises(SystemExit) as exit:
        cli.main(["generate", "Hi"])
    assert exit.value.code == 70
    assert capsys.readouterr().err.startswith("llaf: internal error: KeyError: 'no such key'")


def test_chat_takes_the_sampling_flags() -> None:
    out = llaf("chat", "--backend", SERVER_BACKEND, "-n", "24", "--temperature", "0", "--stop", " Paris",
               stdin="What is the capital of France?\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "The capital of France is\n"


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
        (["generate", "x", "--temperature", "-1"], "llaf: temperature must be >= 0, got -1.0"),
        (["generate", "x", "--top-p", "0"], "llaf: top_p must be in (0, 1], got 0.0"),
        (["chat", "--top-k", "-3"], "llaf: top_k must be >= 0, got -3"),
        (["chat", "--repetition-penalty", "0"], "llaf: repetition_penalty must be > 0, got 0.0"),
        (["generate", "x", "--seed", "-2"], "llaf: seed must be >= 0, got -2"),
        (["generate", "x", "--stop", ""], "llaf: stop strings must not be empty"),
        (["generate", "x", "--storage", "f16"],
         "llaf: SmolLM2-135M-Instruct.Q4_1.gguf: tensor 'blk.0.attn_q.weight' of type Q4_1 cannot be stored as f16 "
         "exactly"),
        (["serve", "--port", "70000"], "llaf: the port must be between 0 and 65535, got 70000"),
        (["serve", "--max-body", "0"], "llaf: the body size limit must be positive, got 0"),
        (["serve", "--max-batch", "0"], "llaf: the batch size (--max-batch) must be at least 1, got 0"),
        (["serve", "--allowed-hosts", "a*.example.com"], "llaf: an allowed host is a name, *.domain or *, got "
                                                          "'a*.example.com'"),
        (["serve", "--allowed-hosts", ","], "llaf: --allowed-hosts names no host: give names, or * for any"),
        (["serve", "--header-timeout", "-1"],
         "llaf: the header timeout must be a finite number of seconds >= 0, got -1.0"),
        # (checked before minutes of timing, whose results go there)
        (["bench", "--out", "README.md"], "llaf: README.md exists and is not a directory"),
        (["serve", "--shutdown-grace", "inf"],
         "llaf: the shutdown grace must be a finite number of seconds >= 0, got inf"),
        (["generate", "x", "--threads", "1000000"],
         "llaf: the thread count must be at most 512 (as llama.cpp's), got 1000000"),
        # Bytes that are not UTF-8 reach Python's argv as lone surrogates (surrogateescape).
        (["generate", "ab\udcffc"], "llaf: the prompt is not valid UTF-8 (the byte 0xff at character 2)"),
        (["chat", "--system", "\udcc3"], "llaf: the system message is not valid UTF-8 (the byte 0xc3 at character 0)"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args: list[str], message: str) -> None:
    out = llaf(*args)
    assert out.returncode == 1
    assert out.stderr.strip() == message


@pytest.mark.parametrize(("env", "code", "message"), [
    # read with surrogateescape: the line is refused, and the chat goes on to the next
    ({"PYTHONUTF8": "1"}, 0,
     "llaf: the input line is not valid UTF-8 (the byte 0xff at character 3); the line was not sent"),
    # decoded strictly, the input cannot be read on
    ({"PYTHONIOENCODING": "utf-8:strict"}, 1, "llaf: the input is not valid UTF-8 (byte 0xff)"),
])
def test_chat_input_that_is_not_utf8_is_one_line(env: dict[str, str], code: int, message: str) -> None:
    import os

    out = subprocess.run([sys.executable, "-m", "llaf.cli", "chat", "--backend", SERVER_BACKEND, "-n", "4"],
                         input=b"Hi \xff there\nHello\n", capture_output=True, cwd=ROOT, env=os.environ | env,
                         timeout=600)
    assert out.returncode == code
    assert out.stderr.decode().strip() == message
    assert bool(out.stdout.strip()) == (code == 0)  # the reply to Hello


def test_serve_refuses_a_port_in_use_before_loading_the_model() -> None:
    out, port = llaf_on_a_busy_port("serve")
    assert out.returncode == 1
    assert out.stderr.strip() == f"llaf: cannot listen on 127.0.0.1:{port}: Address already in use"
    out = llaf("serve", "--host", "no-such-host.invalid", "--port", "8000")
    assert out.returncode == 1
    assert out.stderr.strip().startswith("llaf: cannot listen on no-such-host.invalid:8000: ")


def test_gpt2_example_without_weights_says_how_to_get_them(tmp_path: Path) -> None:
    out = run("examples/gpt2/run.py", "Hello", "-n", "3",
              env={"LLAF_CACHE": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
                   "TIKTOKEN_CACHE_DIR": str(ROOT / ".cache" / "tiktoken")})
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run.py: no weights for 'gpt2'")
    assert "llaf.init('gpt2')" in lines[0]


def test_gpt2_example_runs_from_a_weight_file(tmp_path: Path) -> None:
    """On one backend (the server tests'): the example times transformers
    too, and the engine's parity on each backend is tests/test_gpt2.py's."""
    from llaf.weights import from_transformers, save

    from .conftest import SERVER_BACKEND, random_gpt2

    path = save(from_transformers(random_gpt2(5), progress=False), tmp_path / "gpt2.safetensors")
    out = run("examples/gpt2/run.py", "Hello", "--model", str(path), "-n", "5", "--backend", SERVER_BACKEND,
              "--bench")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Hello")
    assert "llaf / transformers speed:" in out.stdout and "same tokens: True" in out.stdout


def test_version() -> None:
    from llaf import __version__

    out = llaf("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"llaf {__version__}\n"
    assert __version__ == "0.1.0"


def test_bench_help_is_plain_text() -> None:
    out = llaf("bench", "--help")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("usage: llaf bench ")
    # the description, whole and without the docstring's ``quotes``
    assert "Time llaf against transformers and llama.cpp on the same weights" in out.stdout
    assert "results.json and bench.png." in " ".join(out.stdout.split())
    assert "``" not in out.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "nope"], "unknown backend 'nope': choose one of pyopencl, c, multicore, opencl, cuda"),
    (["--storage", "q4,q5"], "unknown weight storage 'q5': choose one of f32, f16, q8, q4, mixed, compact"),
    (["--reps", "0"], "--reps must be at least 1, got 0"),
    (["--model", "/nonexistent/model.gguf"], "no such file or directory: /nonexistent/model.gguf"),
    # a backend that is not built: checked before anything runs
    (["--backend", "cuda"], "backend cuda is not built (no {cuda}/_llm*.so): run `make BACKEND=cuda`"),
])
def test_bench_bad_input_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    from llaf.backend import build_dir

    if "cuda" in args and (build_dir("cuda") / ".built").exists():
        pytest.skip("the cuda backend is built here")
    out = llaf("bench", *args, "--out", str(tmp_path))
    assert (out.returncode, out.stderr) == (1, "llaf: " + message.format(cuda=build_dir("cuda")) + "\n")
    assert not (tmp_path / "results.json").exists()


def _default_gguf() -> Path:
    from llaf.assets import default_model_path

    return default_model_path()


@pytest.mark.parametrize("name", ["SmolLM2-135M-Instruct", "smollm2-135m-instruct.Q4_1",
                                  "SmolLM2-135M-Instruct.Q4_1.gguf"])
def test_the_default_model_by_its_name(name: str) -> None:
    out = llaf("generate", "The capital of France is", "-n", "2", "--backend", SERVER_BACKEND, "--model", name)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "The capital of France is Paris.\n"


def test_a_directory_holding_one_gguf(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").symlink_to(_default_gguf())
    (tmp_path / "README.txt").write_text("not a model")
    out = llaf("generate", "The capital of France is", "-n", "2", "--backend", SERVER_BACKEND, "-m", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "The capital of France is Paris.\n"


def test_a_directory_of_several_ggufs_or_none_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = llaf("generate", "x", "--backend", SERVER_BACKEND, "-m", str(empty))
    assert out.returncode == 1
    assert out.stderr == f"llaf: {empty} holds no GGUF file and is not a Hugging Face model directory " \
                         "(no config.json)\n"
    for name in ("b.gguf", "a.gguf"):
        (tmp_path / name).symlink_to(_default_gguf())
    out = llaf("generate", "x", "--backend", SERVER_BACKEND, "-m", str(tmp_path))
    assert out.returncode == 1
    assert out.stderr == f"llaf: {tmp_path} holds 2 GGUF files (a.gguf, b.gguf): name one of them\n"


def test_generate_reads_the_prompt_from_a_file_or_stdin(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("The capital of France is\n")  # an editor's final newline is not part of the prompt
    for args, stdin in ((["-f", str(prompt)], ""), (["-f", "-"], "The capital of France is\n"),
                        (["-"], "The capital of France is")):
        out = llaf("generate", *args, "-n", "2", "--backend", SERVER_BACKEND, stdin=stdin)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "The capital of France is Paris.\n", args


def test_generate_prompt_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ab\xffc")
    for args, message in (
        (["generate"], "llaf: no prompt: give one as an argument, or -f FILE (- for stdin)"),
        (["generate", "x", "-f", str(bad)], "llaf: give the prompt as an argument or with -f FILE, not both"),
        (["generate", "-f", str(tmp_path / "missing.txt")],
         f"llaf: cannot read the prompt from {tmp_path / 'missing.txt'}: No such file or directory"),
        (["generate", "-f", str(bad)], f"llaf: {bad} is not valid UTF-8 (the byte 0xff at byte 2)"),
        (["generate", "x", "--threads", "2", "--backend", "c"],
         "llaf: a thread count is for the multicore backend; the c backend takes none"),
        (["chat", "--threads", "0", "--backend", "multicore"],
         "llaf: the thread count must be a positive integer, got 0"),
    ):
        out = llaf(*args)
        assert out.returncode == 1, args
        assert out.stderr == message + "\n"


def test_threads_sets_the_multicore_workers() -> None:
    # Futhark's multicore scheduler runs threads - 1 workers beside the calling thread.
    code = ("import os\nfrom llaf.backend import Engine\n"
            "n = lambda: len(os.listdir('/proc/self/task'))\nbefore = n()\nEngine('multicore', threads=4)\n"
            "print(n() - before)\nbefore = n()\nEngine('multicore', threads=1)\nprint(n() - before)\n")
    out = run("-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "3\n0\n"


def test_serve_refuses_a_batch_whose_key_value_cache_cannot_fit() -> None:
    """The bound --max-batch x --context is checked at start, not when the
    batch fills (the engine's allocator would crash)."""
    out = llaf("serve", "--backend", SERVER_BACKEND, "--port", "0", "--max-batch", "100000000")
    assert out.returncode == 1
    assert re.fullmatch(r"llaf: a key/value cache of 100000000 sequences x 2048 positions needs [0-9.]+ GiB, more "
                        r"than the [0-9.]+ GiB of memory available \(llaf serve --max-batch and --context\)",
                        out.stderr.strip().splitlines()[-1]), out.stderr
