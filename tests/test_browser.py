"""llaf in the browser (`make web`, `llaf web`): src/llm.fut compiled to
WebAssembly runs SmolLM2 in headless Chromium, every token computed in the
tab, and gives the native engine's greedy tokens.

Needs Debian's `chromium` and `chromium-driver` and the built app
(build/web, `make web`). Without them the tests are skipped, unless
LLAF_REQUIRE_BROWSER=1 (set by .ci/run), which makes their absence a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llaf.assets import default_model_path
from llaf.backend import build_dir

from .conftest import ROOT, SERVER_BACKEND
from .test_cli import llaf, llaf_on_a_busy_port
from .test_gguf import K_MIXED
from .test_web import browser  # noqa: F401 (the headless Chromium fixture)

PROMPTS = ["Once upon a time", "The three most useful things to know about the Moon are",
           "def fibonacci(n):", "Paris is the capital of"]
NEW_TOKENS = 32


WEB = ROOT / "web"
TEXTS = ["Once upon a time", "Hello, world! It's 2024: café ☕ naïve\n\n  spaces   and\ttabs 12345678",
         "Ünïcödé 日本語のテキスト 🚀 emoji, <|im_start|> spelled in text", "def f(x):\n    return x ** 2  # squares",
         ""]  # (no ids: as a reply whose first token ends it)


def require(ok: bool, message: str) -> None:
    """Skip without what the test needs, but fail under LLAF_REQUIRE_BROWSER=1 (CI)."""
    if not ok:
        if os.environ.get("LLAF_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


def bundled(tmp_path: Path, script: str) -> Path:
    """web/test/`script` bundled for Node into tmp_path with llaf's tables,
    as `make web` bundles the page."""
    from llaf.web import tables

    esbuild = WEB / "node_modules" / ".bin" / "esbuild"
    require(esbuild.exists(), "no web/node_modules: make web")
    (tmp_path / "tables.json").write_text(json.dumps(tables()))
    subprocess.run([str(esbuild), f"test/{script}", "--bundle", "--platform=node", "--format=esm",
                    "--log-level=warning", f"--outfile={tmp_path / script}",
                    f"--alias:llaf-tables={tmp_path / 'tables.json'}"], cwd=WEB, check=True)
    return tmp_path / script


def glue(tmp_path: Path, model: Path, texts: list[str] | None = None) -> dict[str, Any]:
    """What web/src's GGUF reader and panel layout (and tokenizer, given
    `texts`) make of GGUF file `model`, run in Node by web/test/dump.mjs:
    its meta.json, init's arrays beside it in tmp_path (argN.bin)."""
    command = ["node", str(bundled(tmp_path, "dump.mjs")), str(model), str(tmp_path)]
    if texts is not None:
        (tmp_path / "texts.json").write_text(json.dumps(texts))
        command.append(str(tmp_path / "texts.json"))
    subprocess.run(command, check=True)
    return json.loads((tmp_path / "meta.json").read_text())


def browser_draws(tmp_path: Path, logits: np.ndarray, options: dict[str, Any], draws: int) -> np.ndarray:
    """How often web/src/sampling.js's sampler drew each id in `draws` draws (web/test/sampling.mjs, in Node)."""
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"logits": logits.tolist(), "options": options, "draws": draws}))
    out = subprocess.run(["node", str(bundled(tmp_path, "sampling.mjs")), str(case)],
                         capture_output=True, text=True, check=True)
    return np.array(json.loads(out.stdout))


def module_script(tmp_path: Path, script: str, *args: str, timeout: int) -> str:
    """web/test/`script` run in Node on the built module (build/web) and
    tests/data's small Q4_K_M Llama, `args` after them: what it printed."""
    module = build_dir("web")
    require((module / "llm.mjs").exists(), f"no web module in {module}: make web")
    return subprocess.run(["node", str(bundled(tmp_path, script)), str(module),
                           str(ROOT / "tests" / "data" / "llama-Q4_K_M.gguf"), *args],
                          capture_output=True, text=True, timeout=timeout, check=True).stdout


@pytest.mark.parametrize("options", [{"temperature": 0.7}, {"temperature": 1.3, "top_k": 3},
                                     {"temperature": 1.0, "top_p": 0.7},
                                     {"temperature": 0.5, "top_k": 4, "top_p": 0.8}])
def test_the_browser_samples_as_llaf_does(tmp_path: Path, options: dict[str, Any]) -> None:
    """The page's sampler draws each token as often as llaf's Sampler gives
    it probability (the softmax over the temperature, cut to top-k and top-p;
    llaf/sampling.py): 20000 draws, each frequency within 0.015 (four standard
    deviations)."""
    from llaf.sampling import Sampler, SamplingParams

    logits = np.array([1.0, 2.5, -0.5, 0.3, 2.0, -3.0, 2.5], dtype=np.float32)  # a tie for the likeliest
    ids, probs = Sampler(SamplingParams(**options)).candidates(logits)
    expected = np.zeros(logits.size)
    expected[ids] = probs
    got = browser_draws(tmp_path, logits, {**options, "seed": 3}, 20_000) / 20_000
    assert got[expected == 0].sum() == 0
    np.testing.assert_allclose(got, expected, atol=0.015)


def test_the_browser_top_p_over_a_large_vocabulary_keeps_the_likeliest(tmp_path: Path) -> None:
    """Over 5000 logits tied in groups, where the page sorts only the
    likeliest few (64 and 3 tied, then 512: the top 0.6 are 92 tokens), it
    draws the tokens llaf's top-p keeps (a whole sort in tests/test_sampling.py),
    each as often as its probability says. (50000 logits took a minute of
    draws.)"""
    from llaf.sampling import Sampler, SamplingParams

    logits = np.round(np.random.default_rng(5).standard_normal(5_000) * 2.5, 1).astype(np.float32)
    ids, probs = Sampler(SamplingParams(temperature=1.0, top_p=0.6)).candidates(logits)
    assert ids.size == 92
    got = browser_draws(tmp_path, logits, {"temperature": 1.0, "top_p": 0.6, "seed": 5}, 20_000) / 20_000
    assert set(np.flatnonzero(got)) == set(ids.tolist())  # each at least 0.0026: about 52 draws
    np.testing.assert_allclose(got[ids], probs, atol=0.015)


def assert_python_args(tmp_path: Path, got: dict[str, Any], model: Path) -> int:
    """The glue's init arguments for `model` (`glue`) are llaf's Python
    side's, bit for bit (but the rotary frequencies: web/src/model.js), in
    the same storage: the count of arrays."""
    from llaf.generation import with_context
    from llaf.storage import FORMATS, MIXED
    from llaf.web import tables
    from llaf.weights import load

    weights = with_context(load(model, progress=False, storage=got["storage"]), tables()["DEFAULT_CONTEXT"])
    # the last of the arrays but the mixed storage's pools
    pools = sum(len(f.parts("m")) for f in FORMATS.values()) if weights.storage == MIXED else 0
    inv_freq = len(got["args"]) - 1 - pools
    arrays = 0
    for i, (want, js) in enumerate(zip(weights.init_args(), got["args"], strict=True)):
        if "scalar" in js:
            assert js["scalar"] == float(want), i
            continue
        a = np.fromfile(tmp_path / f"arg{i}.bin", dtype=want.dtype).reshape(js["shape"])
        if i == inv_freq:  # equal to the last place or two
            np.testing.assert_allclose(a, want, rtol=5e-7)
        else:
            assert a.shape == want.shape and np.array_equal(a, want), i
        arrays += 1
    return arrays


def test_the_glue_makes_what_python_makes(tmp_path: Path) -> None:
    """web/src's GGUF reader, panel layout and tokenizer, run in Node on
    SmolLM2's file: init's arguments bit for bit those of llaf/storage.py
    (but the rotary frequencies: web/src/model.js), and the same token ids."""
    from llaf.weights import load

    path = default_model_path()
    got = glue(tmp_path, path, TEXTS)
    assert got["storage"] == load(path, progress=False).storage == "q4"
    assert assert_python_args(tmp_path, got, path) == 36  # 9 matrices of 3 q4 or q8 parts, 9 other arrays

    assert_python_tokenizer(got, path)


def assert_python_tokenizer(got: dict[str, Any], path: Path) -> None:
    """The glue's tokenizer (`glue` with TEXTS) gives llaf's Python side's
    ids, decoded texts (whole, and streamed a token at a time as `llaf
    generate` streams them), chat ids and end-of-turn ids for GGUF file `path`."""
    from llaf.generation import TextPieces
    from llaf.tokenizer import from_gguf

    tokenizer = from_gguf(path)
    assert got["ids"] == [tokenizer.encode(t) for t in TEXTS]
    assert got["decoded"] == [tokenizer.decode(tokenizer.encode(t)) for t in TEXTS]
    for ids, pieces in zip(got["ids"], got["streamed"], strict=True):  # a reply's text as the page streams it
        stream = TextPieces(tokenizer)
        assert pieces == [stream.push(tok) for tok in ids], ids
    for text, chat in zip(TEXTS, got["chat"], strict=True):
        control = next((c for c in tokenizer._control_tokens() if c in text), None)
        if control:  # Python tokenizes it as text; the page refuses it
            assert chat == {"error": f"a message may not contain the control token {control}"}
        else:
            assert chat == tokenizer.chat([{"role": "user", "content": text}])
    assert set(got["eos"]) == set(tokenizer.eos_ids)


@pytest.mark.parametrize("name", ["phi3", "gemma", "sentencepiece", "llama3"])
def test_the_glue_builds_every_tokenizer_as_python_does(tmp_path: Path, name: str) -> None:
    """Sentencepiece-style vocabularies (Phi-3's and Gemma's in tests/data;
    a Llama 2-style one, its merges implied by its scores) and a Llama
    3-style byte-level one: the same ids, texts and chats as Python's."""
    from tests.gguf_models import write_llama3_gguf, write_sentencepiece_gguf

    written = {"sentencepiece": write_sentencepiece_gguf, "llama3": write_llama3_gguf}
    path = written[name](tmp_path / f"{name}.gguf") if name in written else ROOT / "tests" / "data" / f"{name}.gguf"
    assert_python_tokenizer(glue(tmp_path, path, TEXTS), path)


# Files whose types no one-format storage the browser runs holds: llama.cpp's
# K-quant mixes (tests/make_k_quant_files.py), and files written here with
# every other type llaf reads.
K_FILES = ["llama-Q4_K_M", "llama-Q5_K_M", "llama-Q3_K_M", "llama-Q2_K"]
WRITTEN = {"Q5_0/Q5_1/Q6_K/F16": dict(qtype="Q5_0", head_qtype="F16", types=K_MIXED | {"blk.0.attn_k.weight": "Q5_1"}),
           "F32 tied": dict(qtype="F32", tied=True), "BF16": dict(qtype="BF16", head_qtype="Q8_0"),
           "Q4_1 with a Q6_K head": dict(qtype="Q4_1", head_qtype="Q6_K")}


@pytest.mark.parametrize("name", K_FILES + list(WRITTEN))
def test_the_glue_lays_out_every_type_as_python_does(tmp_path: Path, name: str) -> None:
    """The mixed storage in the browser: every matrix in the format its type
    keeps (llaf/storage.py `kept`), laid out in its format's pool as
    llaf/storage.py lays it out, bit for bit."""
    from llaf.weights import load
    from tests.conftest import random_llama
    from tests.gguf_models import write_gguf
    from tests.test_gguf import K_CONFIG

    if name in WRITTEN:
        options = dict(WRITTEN[name])
        tied = options.pop("tied", False)
        model = random_llama(8, **K_CONFIG | {"tie_word_embeddings": tied})
        path = write_gguf(model, tmp_path / "model.gguf", **options)
    else:
        path = ROOT / "tests" / "data" / f"{name}.gguf"
    got = glue(tmp_path, path)
    # the storage Python chooses, where the browser runs it (F32 files: f32, which it does not)
    assert got["storage"] == "mixed" and load(path, progress=False).storage in ("mixed", "f32")
    assert assert_python_args(tmp_path, got, path) > 18


def test_llaf_web_refuses_an_address_it_cannot_listen_on() -> None:
    require((build_dir("web") / ".built").exists(), f"no web app in {build_dir('web')}: make web")
    out, port = llaf_on_a_busy_port("web")
    assert out.returncode == 1
    assert out.stderr.strip() == f"llaf: cannot listen on 127.0.0.1:{port}: Address already in use"
    out = llaf("web", "--port", "70000")
    assert (out.returncode, out.stderr.strip()) == (1, "llaf: the port must be between 0 and 65535, got 70000")


def test_llaf_web_refuses_a_truncated_gguf(tmp_path: Path) -> None:
    from llaf.errors import LlafError
    from llaf.web import server

    truncated = tmp_path / "half.gguf"
    truncated.write_bytes(default_model_path().read_bytes()[:50_000_000])
    message = "half.gguf is truncated: tensor 'blk.16.ffn_down.weight' ends past the end of the file"
    with pytest.raises(LlafError) as e:  # (`llaf web` prints it as "llaf: ..." and exits 1)
        server(truncated, host="127.0.0.1", port=0).server_close()
    assert str(e.value) == message


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    """`llaf web` on the default model, in a thread, on a free loopback port: its URL."""
    require((build_dir("web") / ".built").exists(), f"no web app in {build_dir('web')}: make web")
    from llaf.web import server

    httpd = server(host="127.0.0.1", port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_llaf_web_answers_odd_paths_and_names_a_missing_model(app: str) -> None:
    """A NUL byte in the path is a 400 (it dropped the connection, a
    traceback on stderr); a model that is not there is said so."""
    import http.client
    from urllib.parse import urlsplit

    from llaf.errors import LlafError
    from llaf.web import server

    where = urlsplit(app)
    for path, status in (("/%00", 400), ("/a%00b.js", 400), ("/../../etc/passwd", 404), ("/", 200)):
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == status, path
        assert response.getheader("Cross-Origin-Opener-Policy") == "same-origin", path
        conn.close()
    with pytest.raises(LlafError) as e:
        server("/no/such/model.gguf", host="127.0.0.1", port=0)
    assert str(e.value) == "no such file or directory: /no/such/model.gguf"


@pytest.fixture(scope="module")
def page(browser: Any, app: str) -> Any:  # noqa: F811
    """The app's page with its model loaded (`llaf.ready`), once for the
    module's tests: each load downloads and lays out the model again."""
    browser.set_script_timeout(300)
    browser.get(f"{app}/")
    outcome = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.llaf.ready.then(() => done('ready'), (e) => done('failed: ' + e.message));")
    assert outcome == "ready", outcome
    return browser


def browser_generate(driver: Any, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.llaf.generate(arguments[0], arguments[1]).then(done, (e) => done({error: e.message}));",
        prompt, options)


def test_greedy_tokens_in_the_browser_are_native_llafs(page: Any) -> None:
    import llaf

    model = llaf.load(backend=SERVER_BACKEND)
    eos = set(model.tokenizer.eos_ids)
    whole = 0  # prompts whose NEW_TOKENS tokens have no end of turn
    for prompt in PROMPTS:
        ids = model.tokenizer.encode(prompt)
        new = llaf.gen(ids, model.params, NEW_TOKENS)[len(ids):].tolist()
        # The page stops at the end of a turn, as `llaf generate` does; gen does not.
        new = new[:next((i for i, t in enumerate(new) if t in eos), len(new))]
        whole += len(new) == NEW_TOKENS
        got = browser_generate(page, prompt, {"max_new_tokens": NEW_TOKENS, "temperature": 0})
        assert "error" not in got, got
        assert got["ids"][:len(ids)] == ids, prompt
        assert got["ids"][len(ids):] == new, (prompt, got["ids"][len(ids):], new)
        assert got["text"] == model.tokenizer.decode(new)
    assert whole >= 3, whole
    # The hook's sampling: a seed gives the same tokens again.
    a, b = (browser_generate(page, PROMPTS[0], {"max_new_tokens": 8, "temperature": 0.8, "top_p": 0.9, "seed": 7})
            for _ in range(2))
    assert a["ids"] == b["ids"] and len(a["ids"]) > len(model.tokenizer.encode(PROMPTS[0]))


def test_the_next_prompt_keeps_what_the_last_computed(page: Any) -> None:
    """The worker keeps the cache of its last generation: a prompt that
    begins with the last one's tokens (a chat's next turn) computes only the
    rest (`stats.cached_tokens`), with the tokens native llaf gives; also
    when the turn outgrows the cache, which is then grown (`cache_grow`)."""
    import llaf

    model = llaf.load(backend=SERVER_BACKEND)
    first = browser_generate(page, PROMPTS[1], {"max_new_tokens": 12, "temperature": 0})
    assert "error" not in first, first
    # A cache has room for twice what its first prompt asked.
    capacity = 2 * (len(model.tokenizer.encode(PROMPTS[1])) + 12)
    text, last = PROMPTS[1], first
    for more in (" And then", " Tell me more about it, and about how the story goes on from there, in"
                              " a few words that a child would understand; then say what happens next."):
        # Held: the prompt and the 11 new tokens fed back (the 12th was the last).
        held = last["ids"][:-1]
        text = text + last["text"] + more
        ids = model.tokenizer.encode(text)
        shared = next((i for i, (a, b) in enumerate(zip(held, ids, strict=False)) if a != b), len(held))
        assert shared > len(model.tokenizer.encode(PROMPTS[1]))
        last = browser_generate(page, text, {"max_new_tokens": 12, "temperature": 0})
        assert "error" not in last, last
        assert page.execute_script("return window.llaf.lastStats.cached_tokens") == shared
        assert last["ids"] == llaf.gen(ids, model.params, 12).tolist()
    assert len(ids) + 12 > capacity  # (the last turn outgrew the first cache)


def test_a_typed_message_gets_a_streamed_reply(page: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = page
    assert "SmolLM2-135M-Instruct.Q4_1.gguf (q4, context 2048)" in driver.find_element(By.ID, "model").text
    driver.execute_script("""
        window.replyLengths = [];
        new MutationObserver(() => {
          const replies = document.querySelectorAll('.message.assistant');
          if (replies.length) window.replyLengths.push(replies[replies.length - 1].textContent.length);
        }).observe(document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
    """)
    box = driver.find_element(By.ID, "prompt")
    box.send_keys("What is the capital of France?")
    box.send_keys(Keys.ENTER)

    def finished(d: Any) -> Any:
        replies = d.find_elements(By.CSS_SELECTOR, ".message.assistant")
        return replies and replies[-1].get_attribute("data-state") == "done" and replies[-1]

    reply = WebDriverWait(driver, 300).until(finished)
    assert not driver.find_elements(By.CSS_SELECTOR, ".message.error")
    # The same reply as `llaf chat` gives (tests/test_web.py: the server's page).
    assert reply.get_attribute("textContent") == "The capital of France is Paris."
    lengths = driver.execute_script("return window.replyLengths")
    assert len(set(lengths)) >= 4 and lengths == sorted(lengths), lengths
    if shot := os.environ.get("LLAF_WEB_SCREENSHOT"):
        assert driver.save_screenshot(shot)


@pytest.mark.parametrize("damage", ["truncated", "cut in its metadata", "not GGUF"])
def test_a_bad_file_picked_by_the_user_gets_a_message(page: Any, tmp_path: Path, damage: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = page

    data = default_model_path().read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes({"truncated": data[:len(data) // 2], "cut in its metadata": data[:65536],
                     "not GGUF": b"PK\x03\x04" + data[4:4096]}[damage])
    expected = {"truncated": "bad.gguf is truncated: tensor",
                "cut in its metadata": "bad.gguf is not a readable GGUF file: it ends ",
                "not GGUF": "bad.gguf is not a readable GGUF file: it does not start with the GGUF magic"}[damage]
    driver.find_element(By.ID, "file").send_keys(str(bad))
    error = driver.find_element(By.ID, "error")
    WebDriverWait(driver, 120).until(lambda d: error.is_displayed() and expected in error.text)
    assert error.text.startswith("Cannot load the model: "), error.text
    # The tab is not hung, and the model loaded before still answers.
    got = browser_generate(driver, "Hello", {"max_new_tokens": 4})
    assert "error" not in got, got
    assert len(got["ids"]) == 1 + 4  # "Hello" is one token


def test_a_failure_inside_the_engine_says_what_failed(tmp_path: Path) -> None:
    """The compiled module in Node, its init given heads that do not divide
    the width (web/test/failure.mjs): the engine's assertion, as an internal
    error (web/src/futhark.js; Futhark's own class said "HEAP8 is not defined")."""
    assert json.loads(module_script(tmp_path, "failure.mjs", timeout=300)) == {
        "name": "EngineError", "message": "internal error in the engine: Assertion is false: "
        "(heads > 0 && kv_heads > 0 && heads % kv_heads == 0 && qd % heads == 0)"}


def test_the_browser_module_out_of_memory_is_an_error_and_the_engine_goes_on(tmp_path: Path) -> None:
    """A cache larger than WebAssembly's 4 GB (web/test/oom.mjs): the
    runtime's patched allocator makes it an OutOfMemoryError that says so
    (web/src/futhark.js), and the next pass runs. Futhark's own runtime wrote
    through the null pointer ("memory access out of bounds") and the context
    hung."""
    out = module_script(tmp_path, "oom.mjs", "1000000", timeout=120)
    error, after = (json.loads(line) for line in out.splitlines())
    assert error == {"name": "OutOfMemoryError", "message": "the engine ran out of memory (it asked for 187500.0 MiB "
                     "more): a tab's WebAssembly memory stops at 4 GB"}
    assert after == {"after": 512}  # the model's vocabulary: a pass's logits


def test_the_browser_module_computes_the_same_bits_whatever_its_scheduler_chose(tmp_path: Path) -> None:
    """The browser's module runs Futhark's multicore scheduler too, which
    split a reduction by the times it had measured: a fresh context's first
    passes, or 2 or 3 threads, gave other last bits than later passes or one
    thread. Its C gets the native build's patches (scripts/wasm/emcc), so the
    same passes give the same logits bit for bit (web/test/bits.mjs)."""
    module_script(tmp_path, "bits.mjs", str(tmp_path), timeout=300)
    rows = {t: np.fromfile(tmp_path / f"threads-{t}.bin", dtype=np.float32).reshape(9, -1) for t in (1, 2, 3)}
    for threads, logits in rows.items():
        np.testing.assert_array_equal(logits[:3], logits[3:6], err_msg=f"{threads} threads: the first passes")
        np.testing.assert_array_equal(logits[3:6], logits[6:], err_msg=f"{threads} threads: the second passes")
        np.testing.assert_array_equal(logits, rows[1], err_msg=f"{threads} threads against one")


def test_a_tokenizer_larger_than_the_model_gets_a_message(page: Any, tmp_path: Path) -> None:
    """A file whose tokenizer has ids past its embedding's rows: the page says
    which id, as llaf's Python side does (llaf/checks.py), not the engine."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.conftest import random_llama
    from tests.gguf_models import write_gguf
    from tests.test_gguf import K_CONFIG

    path = write_gguf(random_llama(8, **K_CONFIG), tmp_path / "small-vocabulary.gguf", qtype="Q8_0",
                      tokenizer=default_model_path())
    page.find_element(By.ID, "file").send_keys(str(path))
    label = page.find_element(By.ID, "model")
    WebDriverWait(page, 300).until(lambda d: label.text.startswith("small-vocabulary.gguf ("))
    got = browser_generate(page, "Hello world", {"max_new_tokens": 4})
    assert got == {"error": "token id 19556 at position 0 is outside the vocabulary [0, 512)"}


@pytest.mark.parametrize("arch", ["qwen2", "qwen3", "phi3", "gemma"])
def test_the_glue_reads_every_architecture_as_python_does(tmp_path: Path, arch: str) -> None:
    """The Llama family's descendants in the browser (tests/data's files of
    tests/make_arch_files.py): biases (Qwen2), query/key norms and heads of
    their own size (Qwen3), fused projections, partial rotary and a sliding
    window (Phi-3), GeGLU and a scaled embedding (Gemma): init's arguments
    bit for bit Python's."""
    path = ROOT / "tests" / "data" / f"{arch}.gguf"
    got = glue(tmp_path, path)
    assert assert_python_args(tmp_path, got, path) > 18


@pytest.fixture(scope="module")
def k_quant_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama with SmolLM2's tokenizer, its matrices of the
    types llama.cpp's Q4_K_M files mix (Q4_K, some Q6_K, Q5_0, Q5_1, Q8_0)
    and a Q6_K embedding and head: in the mixed storage, the formats q4k, k8
    and q8."""
    from tests.conftest import random_llama
    from tests.gguf_models import write_gguf
    from tests.test_gguf import K_CONFIG

    model = random_llama(8, **K_CONFIG | {"vocab_size": 49152})
    return write_gguf(model, tmp_path_factory.mktemp("k") / "k-quants.gguf", qtype="Q4_K", head_qtype="Q6_K",
                      types=K_MIXED, tokenizer=default_model_path())


def picked_runs_as_natively(page: Any, path: Path, storage: str) -> None:
    """GGUF file `path`, picked from disk in the page, loads in `storage` and
    gives native llaf's greedy tokens on PROMPTS."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    import llaf

    model = llaf.load(path, backend=SERVER_BACKEND, progress=False)
    eos = set(model.tokenizer.eos_ids)
    page.find_element(By.ID, "file").send_keys(str(path))
    label, error = page.find_element(By.ID, "model"), page.find_element(By.ID, "error")
    WebDriverWait(page, 300).until(lambda d: label.text.startswith(f"{path.name} (") or error.is_displayed())
    assert not error.is_displayed(), error.text
    assert label.text == f"{path.name} ({storage}, context {model.params.context})"
    for prompt in PROMPTS:
        ids = model.tokenizer.encode(prompt)
        new = llaf.gen(ids, model.params, NEW_TOKENS)[len(ids):].tolist()
        new = new[:next((i for i, t in enumerate(new) if t in eos), len(new))]
        got = browser_generate(page, prompt, {"max_new_tokens": NEW_TOKENS, "temperature": 0})
        assert "error" not in got, got
        assert got["ids"] == ids + new, prompt


# (The tests from here on leave the page with the model they picked loaded.)
@pytest.mark.parametrize(("arch", "storage"), [("qwen2", "q8"), ("qwen3", "mixed"), ("phi3", "q8"), ("gemma", "mixed")])
def test_the_llama_familys_descendants_run_in_the_page(page: Any, arch: str, storage: str) -> None:
    """Qwen2 (query/key/value biases), Qwen3 (query/key norms, heads of their
    own size; F16, so the mixed storage's f16), Phi-3 (fused projections,
    partial rotary, a sliding window; a sentencepiece vocabulary) and Gemma
    (GeGLU, a scaled embedding) picked from disk."""
    picked_runs_as_natively(page, ROOT / "tests" / "data" / f"{arch}.gguf", storage)


def test_a_k_quant_file_picked_by_the_user_runs_as_natively(page: Any, k_quant_file: Path) -> None:
    """A file of K-quants picked from disk loads in the page (the mixed
    storage, each matrix in its own format) and gives native llaf's greedy tokens."""
    picked_runs_as_natively(page, k_quant_file, "mixed")


@pytest.fixture(scope="module")
def llama31_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random-weight Llama with Llama 3.1's rope scaling, which its GGUF
    file holds as rope_freqs.weight (divisors of the rotary frequencies), and
    SmolLM2's tokenizer; and the same file with a zero among the divisors."""
    from tests.gguf_models import write_gguf
    from tests.test_gguf import rope_scaled_llama

    model, factors = rope_scaled_llama(5, vocab_size=49152)
    zero = factors.copy()
    zero[3] = 0
    folder = tmp_path_factory.mktemp("llama31")

    def write(name: str, divisors: np.ndarray) -> Path:
        return write_gguf(model, folder / name, extra={"rope_freqs.weight": divisors}, tokenizer=default_model_path())

    return write("llama31.gguf", factors), write("zero.gguf", zero)


def test_the_glue_reads_rope_freqs_as_python_does(tmp_path: Path, llama31_files: tuple[Path, Path]) -> None:
    """Llama 3.1's rope_freqs.weight divides the rotary frequencies in the
    page as in llaf's Python side; a zero among them is refused, the page
    saying which tensor, as Python does."""
    good, bad = llama31_files
    got = glue(tmp_path, good)
    assert assert_python_args(tmp_path, got, good) > 18
    out = subprocess.run(["node", str(bundled(tmp_path, "dump.mjs")), str(bad), str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert ("GGUFError: zero.gguf: tensor rope_freqs.weight holds zeros or values that are not finite: "
            "the rotary frequencies it gives are not finite") in out.stderr, out.stderr


def test_a_llama_31_file_picked_by_the_user_runs_as_natively(page: Any, llama31_files: tuple[Path, Path]) -> None:
    """A file with Llama 3.1's rope scaling (rope_freqs.weight) loads in the
    page and gives native llaf's greedy tokens."""
    picked_runs_as_natively(page, llama31_files[0], "mixed")
