"""The chat page at `/`, driven in headless Chromium through Selenium: type a
question, watch the reply stream in, ask a follow-up that needs the first
exchange, reload, regenerate with a system prompt; replies rendered as
Markdown and sanitized; /docs offline.

The Markdown and sanitizing test feeds the page a reply of its choosing: it
replaces `fetch` for /v1/chat/completions in that one browser tab with a
stream of the server's chunk format (SmolLM2 cannot be made to write given
Markdown). What it proves: the page's own path from streamed chunks to the
DOM, through the bundled marked and DOMPurify, as it runs for the server's
replies (which the other test checks end to end).

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them).
Without them the test is skipped, unless LLAF_REQUIRE_BROWSER=1 (set by
.ci/run), which makes their absence a failure. LLAF_SCREENSHOT=path saves a
screenshot of the page (docs/server.png is one).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SERVER_CONTEXT, LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# Records the length of the last reply's text at every change of the page.
WATCH_REPLIES = """
window.replyLengths = [];
new MutationObserver(() => {
  const replies = document.querySelectorAll('.message.assistant');
  if (replies.length) window.replyLengths.push(replies[replies.length - 1].textContent.length);
}).observe(document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
"""

# Records the body of each request the page sends for a reply (the real
# fetch still sends it).
SPY_ON_REQUESTS = """
window.sent = [];
const realFetch = window.fetch;
window.fetch = (url, init) => {
  if (url === '/v1/chat/completions') window.sent.push(JSON.parse(init.body));
  return realFetch(url, init);
};
"""

# True once the page is idle after a reply (the button says Send again and
# the last reply no longer streams); one script, since the page redraws the
# conversation when a reply ends.
IDLE = """
const replies = document.querySelectorAll('.message.assistant');
return document.getElementById('send').textContent === 'Send' && replies.length > 0
  && replies[replies.length - 1].dataset.state !== 'streaming';
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        message = f"no {' or '.join(missing)}: apt-get install chromium chromium-driver"
        if os.environ.get("LLAF_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,700", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    # The Debian driver, so that Selenium Manager downloads nothing.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_idle(driver: Any, replies: int, timeout: float = 300) -> str:
    """Wait until the page shows `replies` finished replies; the last one's text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    count = "return document.querySelectorAll('.message.assistant').length"
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(count) == replies and d.execute_script(IDLE))
    errors = driver.find_elements(By.CSS_SELECTOR, ".message.error")
    assert not errors, errors[0].text
    return str(driver.execute_script("const r = document.querySelectorAll('.message.assistant');"
                                     "return r[r.length - 1].textContent"))


def send_and_wait(driver: Any, text: str) -> tuple[str, list[int]]:
    """Type `text`, press Enter, wait for the reply to finish; the reply and
    the lengths its text went through."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = len(driver.find_elements(By.CSS_SELECTOR, ".message.assistant"))
    driver.execute_script("window.replyLengths = [];")
    box = driver.find_element(By.ID, "prompt")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    reply = wait_idle(driver, before + 1)
    return reply, driver.execute_script("return window.replyLengths")


def open_page(driver: Any, server: LiveServer) -> None:
    """The chat page with nothing kept from an earlier test."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{server.url}/")
    driver.execute_script("localStorage.clear()")
    driver.refresh()
    assert driver.title == "llaf chat"
    WebDriverWait(driver, 30).until(lambda d: "SmolLM2-135M-Instruct" in d.find_element(By.ID, "model").text)


def texts(driver: Any, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def loaded_elsewhere(driver: Any, server: LiveServer) -> list[str]:
    """The URLs the page loaded from anywhere but the server."""
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [u for u in urls if not u.startswith(server.url + "/")]


def test_the_page_streams_replies_and_keeps_the_conversation(browser: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, server)
    browser.execute_script(WATCH_REPLIES + SPY_ON_REQUESTS)
    # max tokens follows the context: left empty, the page asks for none and
    # the server gives the reply what the context leaves.
    box = browser.find_element(By.ID, "max-tokens")
    assert box.get_attribute("value") == "" and box.get_attribute("max") == str(SERVER_CONTEXT)

    reply, lengths = send_and_wait(browser, "What is the capital of France?")
    assert reply == "The capital of France is Paris."
    # Streamed: the text grew through several lengths, never shrinking.
    grown = sorted(set(lengths))
    assert len(grown) >= 4 and lengths == sorted(lengths) and grown[-1] == len(reply), lengths

    # The follow-up only makes sense with the first exchange in the request.
    reply, lengths = send_and_wait(browser, "And of Germany?")
    assert reply == "The capital of Germany is Berlin."
    assert len(set(lengths)) >= 4
    users = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".message.user")]
    assert users == ["What is the capital of France?", "And of Germany?"]
    sent = browser.execute_script("return window.sent")
    assert [len(s["messages"]) for s in sent] == [1, 3] and all("max_tokens" not in s for s in sent), sent

    # The speed of each reply, from the stream's usage chunk, and in the
    # status line for the last one.
    stats = texts(browser, ".stats")
    assert len(stats) == 2 and all(re.fullmatch(r"\d+ tokens in [\d.]+ s · [\d.]+ tokens/s", s) for s in stats), stats
    assert stats[1] in browser.find_element(By.ID, "status").text
    assert not loaded_elsewhere(browser, server)

    # A reload keeps the conversation, its Markdown and its stats.
    browser.refresh()
    WebDriverWait(browser, 30).until(lambda d: "SmolLM2-135M-Instruct" in d.find_element(By.ID, "model").text)
    assert texts(browser, ".message.user") == users
    assert texts(browser, ".message.assistant") == ["The capital of France is Paris.",
                                                    "The capital of Germany is Berlin."]
    assert texts(browser, ".stats") == stats

    # Regenerate, with a system prompt: the request has the system message
    # and the conversation up to the last question, without the old reply.
    browser.execute_script(SPY_ON_REQUESTS)
    browser.find_element(By.ID, "system").send_keys("Answer in one short sentence.")
    regenerate = browser.find_elements(By.CSS_SELECTOR, ".regenerate")
    assert len(regenerate) == 1  # on the last reply only
    regenerate[0].click()
    reply = wait_idle(browser, 2)
    assert reply
    (body,) = browser.execute_script("return window.sent")
    assert body["messages"] == [
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Germany?"},
    ]
    assert body["stream"] and body["stream_options"] == {"include_usage": True} and "max_tokens" not in body
    assert texts(browser, ".message.user") == users

    if shot := os.environ.get("LLAF_SCREENSHOT"):
        # The screenshot for the README: a reply with Markdown as SmolLM2 writes it.
        for field, value in (("system", ""), ("max-tokens", "160")):
            browser.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1]; "
                                   "e.dispatchEvent(new Event('input'))", field, value)
        send_and_wait(browser, "Write a Python function that adds two numbers.")
        assert browser.save_screenshot(shot)


# A reply as the server streams it, in pieces that cut through the Markdown
# ("**bo" + "ld**"), with raw HTML and a javascript: link that must not run.
MARKDOWN_REPLY = [
    "Here is **bo", "ld** text, `inline code` and a list:\n\n- one\n- two\n\n```python\nprint(1",
    " < 2)\n```\n\n", '<img src=x onerror="window.pwned = 1"> <script>window.pwned = 2</script> ',
    "[a link](javascript:window.pwned=3) and <b onmouseover=\"window.pwned = 4\">bold HTML</b>\n\n",
    "| a | b |\n|---|---|\n| 1 | 2 |",
]

# Replaces fetch for /v1/chat/completions with a stream of `pieces` in the
# server's chunk format, a usage chunk of 7 tokens, and [DONE].
STUB_REPLY = """
const pieces = arguments[0];
window.sent = [];
const realFetch = window.fetch;
window.fetch = async (url, init) => {
  if (url !== '/v1/chat/completions') return realFetch(url, init);
  window.sent.push(JSON.parse(init.body));
  const encoder = new TextEncoder();
  const event = (data) => encoder.encode('data: ' + JSON.stringify(data) + '\\n\\n');
  const stream = new ReadableStream({
    async start(controller) {
      for (const piece of pieces) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        controller.enqueue(event({choices: [{index: 0, delta: {content: piece}, finish_reason: null}]}));
      }
      controller.enqueue(event({choices: [], usage: {prompt_tokens: 3, completion_tokens: 7, total_tokens: 10}}));
      controller.enqueue(encoder.encode('data: [DONE]\\n\\n'));
      controller.close();
    },
  });
  return new Response(stream, {headers: {'Content-Type': 'text/event-stream'}});
};
"""


def check_markdown(driver: Any) -> None:
    """The page shows MARKDOWN_REPLY as elements, with nothing of the
    model's HTML executed or made into elements."""
    from selenium.webdriver.common.by import By

    (reply,) = driver.find_elements(By.CSS_SELECTOR, ".message.assistant")
    assert [e.text for e in reply.find_elements(By.TAG_NAME, "strong")] == ["bold"]
    assert [e.text for e in reply.find_elements(By.CSS_SELECTOR, "p > code")] == ["inline code"]
    assert [e.text for e in reply.find_elements(By.CSS_SELECTOR, "ul > li")] == ["one", "two"]
    (code,) = reply.find_elements(By.CSS_SELECTOR, "pre > code.language-python")
    assert code.get_attribute("textContent") == "print(1 < 2)\n"
    assert [e.text for e in reply.find_elements(By.CSS_SELECTOR, "table td")] == ["1", "2"]
    # The model's HTML is text on the page, not elements.
    for tag in ("img", "script", "b"):
        assert not reply.find_elements(By.TAG_NAME, tag), tag
    text = reply.get_attribute("textContent")
    assert '<img src=x onerror="window.pwned = 1">' in text and "<script>window.pwned = 2</script>" in text
    (link,) = reply.find_elements(By.TAG_NAME, "a")
    assert link.text == "a link" and not (link.get_attribute("href") or "").startswith("javascript:")
    link.click()
    assert driver.execute_script("return window.pwned") is None


def test_the_page_renders_markdown_safely_and_keeps_it_across_a_reload(browser: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, server)
    browser.execute_script(STUB_REPLY, MARKDOWN_REPLY)
    box = browser.find_element(By.ID, "prompt")
    box.send_keys("Show me some Markdown")
    box.send_keys(Keys.ENTER)
    wait_idle(browser, 1, timeout=30)  # no model: the reply takes a tenth of a second
    check_markdown(browser)
    assert texts(browser, ".stats")[0].startswith("7 tokens in ")

    # Copy puts the reply's Markdown on the clipboard, as the model wrote it.
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": server.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    browser.find_element(By.CSS_SELECTOR, ".copy").click()
    clipboard = browser.execute_async_script("navigator.clipboard.readText().then(arguments[0])")
    assert clipboard == "".join(MARKDOWN_REPLY)

    # After a reload the reply is drawn again from what the page kept.
    browser.refresh()
    wait_idle(browser, 1, timeout=30)
    check_markdown(browser)
    assert texts(browser, ".message.user") == ["Show me some Markdown"]

    # New chat forgets it, also across a reload.
    browser.find_element(By.ID, "new-chat").click()
    browser.refresh()
    assert not browser.find_elements(By.CSS_SELECTOR, ".message")


def test_the_api_docs_work_offline(browser: Any, server: LiveServer) -> None:
    """/docs (Swagger UI) loads everything from the server, not a CDN; /redoc,
    which would not, is off."""
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server.url}/docs")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    paths = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
    assert "/v1/chat/completions" in paths and "/health" in paths
    assert not loaded_elsewhere(browser, server)

    assert httpx.get(f"{server.url}/redoc").status_code == 404


def test_the_committed_markdown_bundle_is_built_from_the_locked_packages() -> None:
    """llaf/static/markdown.js names the versions it was built from (page/build.mjs);
    they are those of page/package-lock.json (`make page-check` compares the whole
    bundle with a fresh build, which needs npm)."""
    lock = json.loads((ROOT / "page/package-lock.json").read_text())["packages"]
    first = (ROOT / "llaf/static/markdown.js").read_text().splitlines()[0]
    built = dict(re.findall(r"(marked|dompurify|esbuild) ([\w.-]+)", first))
    assert built == {name: lock[f"node_modules/{name}"]["version"] for name in ("marked", "dompurify", "esbuild")}
