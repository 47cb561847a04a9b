"""Decode speed of llaf in the browser beside native llaf, in one run
(docs/PERFORMANCE.md, "In the browser"):

    .venv/bin/python scripts/web-speed.py [--model FILE.gguf] [--tokens 64] [--threads 2] [--runs 5]

The browser: `llaf web` on the model (default: llaf's) in headless Chromium (Debian's
chromium and chromium-driver), the page's engine on `--threads` threads
(`?threads=N`), `window.llaf.generate` greedy, the worker's own timing of the
decode steps.  Native: the multicore backend on as many threads, the same
prompt and the same number of steps (prefill, then one `llaf.step` a token).
Runs alternate between the two.  Besides wall-clock tok/s (median and best),
each side's CPU time per token (all of Chromium's processes, or this
process), which a busy machine changes less than the wall clock.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import psutil

import llaf
from llaf.web import server

PROMPT = "The three most useful things to know about the Moon are"


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def native_decode(model: llaf.Model, ids: list[int], tokens: int) -> tuple[float, float]:
    """Tok/s and CPU ms a token of `tokens` greedy steps after the prompt."""
    logits, cache = llaf.prefill(model.params, ids, capacity=len(ids) + tokens)
    me = [psutil.Process()]
    cpu, start = cpu_seconds(me), time.perf_counter()
    for _ in range(tokens - 1):
        logits = llaf.step(cache, int(logits.argmax()))
    wall = time.perf_counter() - start
    return (tokens - 1) / wall, (cpu_seconds(me) - cpu) * 1000 / (tokens - 1)


def summary(name: str, speeds: list[float], cpu: list[float]) -> str:
    return (f"  {name}: {statistics.median(speeds):.1f} tok/s median, best {max(speeds):.1f} "
            f"[{', '.join(f'{s:.1f}' for s in speeds)}]; CPU {statistics.median(cpu):.0f} ms a token")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="native threads, and the browser engine's")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", help="a GGUF file (default: llaf's default model)")
    args = ap.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    httpd = server(args.model, host="127.0.0.1", port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    service = Service("/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    chromium = psutil.Process(service.process.pid).children(recursive=True)
    model = llaf.load(args.model, backend="multicore", threads=args.threads)
    ids = model.tokenizer.encode(PROMPT)
    try:
        driver.set_script_timeout(900)
        driver.get(f"http://127.0.0.1:{httpd.server_address[1]}/?threads={args.threads}")
        driver.execute_async_script("const done = arguments[arguments.length - 1]; window.llaf.ready.then(done);")
        chromium = psutil.Process(service.process.pid).children(recursive=True)  # the page's processes too
        generate = ("const done = arguments[arguments.length - 1];"
                    "window.llaf.generate(arguments[0], {max_new_tokens: arguments[1]})"
                    ".then(() => done(window.llaf.lastStats));")
        driver.execute_async_script(generate, PROMPT, 8)  # warm-up
        native_decode(model, ids, 8)
        web, web_cpu, native, native_cpu = [], [], [], []
        for _ in range(args.runs):
            before = cpu_seconds(chromium)
            s = driver.execute_async_script(generate, PROMPT, args.tokens)
            web.append(s["decode_tokens"] / (s["decode_ms"] / 1000))
            # the prompt's pass too, counted at the decode steps' mean wall time
            web_cpu.append((cpu_seconds(chromium) - before) * 1000 / (s["decode_tokens"] + s["prefill_ms"]
                                                                      / (s["decode_ms"] / s["decode_tokens"])))
            speed, cpu = native_decode(model, ids, args.tokens)
            native.append(speed)
            native_cpu.append(cpu)
        w, n = statistics.median(web), statistics.median(native)
        print(f"decode, {args.tokens} tokens after an {len(ids)}-token prompt, {args.runs} alternating runs:")
        print(summary(f"browser (wasm-multicore, {args.threads} threads)", web, web_cpu))
        print(summary(f"native multicore, {args.threads} threads", native, native_cpu))
        print(f"  ratio: {w / n:.2f}x median, {max(web) / max(native):.2f}x best, "
              f"{statistics.median(native_cpu) / statistics.median(web_cpu):.2f}x in CPU time")
    finally:
        driver.quit()
        httpd.shutdown()


if __name__ == "__main__":
    main()
