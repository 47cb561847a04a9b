"""llaf in the browser (`make web`, `llaf web`): src/llm.fut compiled to
WebAssembly runs SmolLM2 in headless Chromium, every token computed in the
tab, and gives the native engine's greedy tokens.

Needs Debian's `chromium` and `chromium-driver` and the built app
(build/web, `make web`). Without them the tests are skipped, unless
LLAF_REQUIRE_BROWSER=1 (set by .ci/run), which makes their absence a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llaf.assets import default_model_path
from llaf.backend import build_dir

from .conftest import SERVER_BACKEND
from .test_web import browser  # noqa: F401 (the headless Chromium fixture)

PROMPTS = ["Once upon a time", "The three most useful things to know about the Moon are",
           "def fibonacci(n):", "Paris is the capital of"]
NEW_TOKENS = 32


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    """`llaf web` on the default model, in a thread, on a free loopback port: its URL."""
    if not (build_dir("web") / ".built").exists():
        message = f"no web app in {build_dir('web')}: make web"
        if os.environ.get("LLAF_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from llaf.web import server

    httpd = server(host="127.0.0.1", port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


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
    for prompt in PROMPTS:
        ids = model.tokenizer.encode(prompt)
        native = llaf.gen(ids, model.params, NEW_TOKENS)
        got = browser_generate(page, prompt, {"max_new_tokens": NEW_TOKENS, "temperature": 0})
        assert "error" not in got, got
        assert got["ids"][:len(ids)] == ids, prompt
        assert np.array_equal(got["ids"], native), (prompt, got["ids"][len(ids):], native[len(ids):].tolist())
        assert got["text"] == model.tokenizer.decode(native[len(ids):])
    # The hook's sampling: a seed gives the same tokens again.
    a, b = (browser_generate(page, PROMPTS[0], {"max_new_tokens": 8, "temperature": 0.8, "top_p": 0.9, "seed": 7})
            for _ in range(2))
    assert a["ids"] == b["ids"] and len(a["ids"]) > len(model.tokenizer.encode(PROMPTS[0]))


def test_a_typed_message_gets_a_streamed_reply(page: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = page
    assert "SmolLM2-135M-Instruct" in driver.find_element(By.ID, "model").text
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


@pytest.mark.parametrize("damage", ["truncated", "not GGUF"])
def test_a_bad_file_picked_by_the_user_gets_a_message(page: Any, tmp_path: Path, damage: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = page

    data = default_model_path().read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(data[:len(data) // 2] if damage == "truncated" else b"PK\x03\x04" + data[4:4096])
    expected = ("bad.gguf is truncated: tensor" if damage == "truncated"
                else "bad.gguf is not a readable GGUF file: it does not start with the GGUF magic")
    driver.find_element(By.ID, "file").send_keys(str(bad))
    error = driver.find_element(By.ID, "error")
    WebDriverWait(driver, 120).until(lambda d: error.is_displayed() and expected in error.text)
    assert error.text.startswith("Cannot load the model: "), error.text
    # The tab is not hung, and the model loaded before still answers.
    got = browser_generate(driver, "Hello", {"max_new_tokens": 4})
    assert "error" not in got, got
    assert len(got["ids"]) == 1 + 4  # "Hello" is one token
