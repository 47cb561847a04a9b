"""The chat page at `/`, driven in headless Chromium through Selenium: type a
question, watch the reply stream in, ask a follow-up that needs the first
exchange.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them).
Without them the test is skipped, unless LLAF_REQUIRE_BROWSER=1 (set by
.ci/run), which makes their absence a failure. LLAF_SCREENSHOT=path saves a
screenshot of the page (docs/server.png is one).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import LiveServer

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


def send_and_wait(driver: Any, text: str) -> tuple[str, list[int]]:
    """Type `text`, press Enter, wait for the reply to finish; the reply and
    the lengths its text went through."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    before = len(driver.find_elements(By.CSS_SELECTOR, ".message.assistant"))
    driver.execute_script("window.replyLengths = [];")
    box = driver.find_element(By.ID, "prompt")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)

    def finished(d: Any) -> Any:
        replies = d.find_elements(By.CSS_SELECTOR, ".message.assistant")
        return len(replies) > before and replies[-1].get_attribute("data-state") == "done" and replies[-1]

    reply = WebDriverWait(driver, 120).until(finished)
    errors = driver.find_elements(By.CSS_SELECTOR, ".message.error")
    assert not errors, errors[0].text
    return reply.get_attribute("textContent"), driver.execute_script("return window.replyLengths")


def test_the_page_streams_replies_and_keeps_the_conversation(browser: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server.url}/")
    assert browser.title == "llaf chat"
    WebDriverWait(browser, 30).until(lambda d: "SmolLM2-135M-Instruct" in d.find_element(By.ID, "model").text)
    browser.execute_script(WATCH_REPLIES)

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

    if shot := os.environ.get("LLAF_SCREENSHOT"):
        assert browser.save_screenshot(shot)
