"""Decode speed of llaf in the browser beside native llaf, in one run
(docs/PERFORMANCE.md, "In the browser"):

    .venv/bin/python scripts/web-speed.py [--tokens 128] [--threads 2] [--runs 3]

The browser: `llaf web` on the default model in headless Chromium (Debian's
chromium and chromium-driver), `window.llaf.generate` greedy, the worker's
own timing of the decode steps.  Native: the multicore backend with as many
threads, the same prompt and the same number of steps (prefill, then one
`llaf.step` a token).  Runs alternate between the two.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import llaf
from llaf.web import server

PROMPT = "The three most useful things to know about the Moon are"


def native_decode(model: llaf.Model, ids: list[int], tokens: int) -> float:
    """Decode tok/s of `tokens` greedy steps after the prompt."""
    logits, cache = llaf.prefill(model.params, ids, capacity=len(ids) + tokens)
    start = time.perf_counter()
    for _ in range(tokens - 1):
        logits = llaf.step(cache, int(logits.argmax()))
    return (tokens - 1) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="native threads, and the browser's cores")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    httpd = server(host="127.0.0.1", port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    model = llaf.load(backend="multicore", threads=args.threads)
    ids = model.tokenizer.encode(PROMPT)
    try:
        driver.set_script_timeout(600)
        driver.get(f"http://127.0.0.1:{httpd.server_address[1]}/")
        cores = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.llaf.ready.then(() => done(navigator.hardwareConcurrency));")
        generate = ("const done = arguments[arguments.length - 1];"
                    "window.llaf.generate(arguments[0], {max_new_tokens: arguments[1]})"
                    ".then(() => done(window.llaf.lastStats));")
        driver.execute_async_script(generate, PROMPT, 8)  # warm-up
        native_decode(model, ids, 8)
        web, native = [], []
        for _ in range(args.runs):
            s = driver.execute_async_script(generate, PROMPT, args.tokens)
            web.append(s["decode_tokens"] / (s["decode_ms"] / 1000))
            native.append(native_decode(model, ids, args.tokens))
        w, n = statistics.median(web), statistics.median(native)
        print(f"decode, {args.tokens} tokens, {args.runs} runs (median [min-max]):")
        print(f"  browser (wasm-multicore, {cores} cores): {w:.1f} tok/s [{min(web):.1f}-{max(web):.1f}]")
        print(f"  native multicore, {args.threads} threads: {n:.1f} tok/s [{min(native):.1f}-{max(native):.1f}]")
        print(f"  ratio: {w / n:.2f}x")
    finally:
        driver.quit()
        httpd.shutdown()


if __name__ == "__main__":
    main()
