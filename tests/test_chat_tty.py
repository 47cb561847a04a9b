"""`llaf chat` and `llaf generate` at a terminal, driven through a
pseudo-terminal (pexpect) as a user would: the status line and banner,
line editing and history, Ctrl-C during a reply and at the prompt, Ctrl-D,
the commands, and a conversation that outgrows the context."""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

import llaf

from .conftest import SERVER_BACKEND

ROOT = Path(__file__).resolve().parent.parent
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Long enough that no expectation waits on a slow, busy machine in vain.
WAIT = 120

Messages = list[dict[str, str]]


def spawn(*args: str) -> tuple[pexpect.spawn, io.StringIO]:
    """`llaf ARGS` on a pseudo-terminal, and what it has written so far."""
    transcript = io.StringIO()
    child = pexpect.spawn(sys.executable, ["-m", "llaf.cli", *args], cwd=str(ROOT), env=dict(os.environ),
                          encoding="utf-8", timeout=WAIT, dimensions=(40, 200))
    child.logfile_read = transcript
    return child, transcript


def ask(child: pexpect.spawn, line: str) -> str:
    """Send `line` at the prompt; what is printed before the next prompt (without its last newline)."""
    child.sendline(line)
    child.expect_exact(line + "\r\n")  # the terminal's echo
    child.expect_exact("\r\n> ")
    return str(child.before).replace("\r\n", "\n")


def quit_with_ctrl_d(child: pexpect.spawn, transcript: io.StringIO) -> None:
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert transcript.getvalue().endswith("> \r\n")  # the prompt's line ended


@pytest.fixture(scope="module")
def model() -> Iterator[llaf.Model]:
    """The replies the chat should give, computed through the API (greedy:
    the same tokens)."""
    yield llaf.load(backend=SERVER_BACKEND, context=2048)


def reply(model: llaf.Model, messages: Messages, n: int) -> str:
    return model.chat(messages, n)


def test_status_line_on_a_terminal() -> None:
    child, transcript = spawn("generate", "The capital of France is", "-n", "2", "--backend", "multicore",
                              "--threads", "2", "--context", "256")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    out = transcript.getvalue()
    status = f"llaf: {MODEL}, storage q4, backend multicore, 2 threads, context 256\r\n"
    assert status in out
    # the status line comes once the model is loaded, before the text
    assert out.endswith(status + "The capital of France is Paris.\r\n")


def test_quiet_has_no_status_line() -> None:
    child, transcript = spawn("generate", "The capital of France is", "-n", "2", "--backend", SERVER_BACKEND,
                              "--quiet")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert transcript.getvalue() == "The capital of France is Paris.\r\n"


def test_chat_editing_history_and_ctrl_c(model: llaf.Model) -> None:
    # Replies of up to 800 tokens: the story below must still be being
    # written when Ctrl-C comes, though a busy machine may leave this test
    # unscheduled for seconds (with 200, CI's pytest beside the pyopencl
    # one once read the whole story before it sent Ctrl-C). The context
    # holds the conversation with any part of the story shown, and a reply.
    n, context = 800, 2048
    child, transcript = spawn("chat", "--backend", SERVER_BACKEND, "--context", str(context), "-n", str(n))
    child.expect_exact(f"llaf: {MODEL}, storage q4, backend {SERVER_BACKEND}, context {context}\r\n")
    child.expect_exact(f"Chatting with {MODEL}. /help lists the commands; Ctrl-C stops a reply; "
                       "Ctrl-D or /quit quits.\r\n> ")

    france = "What is the capital of France?"
    history: Messages = [{"role": "user", "content": france}]
    first = ask(child, france)
    assert first == reply(model, history, n)
    history.append({"role": "assistant", "content": first})

    # Up-arrow recalls the line (readline shows it again), Enter sends it.
    child.send("\x1b[A")
    child.expect_exact(france)
    child.send("\r")
    child.expect_exact("\r\n")
    child.expect_exact("\r\n> ")
    history.append({"role": "user", "content": france})
    second = str(child.before).replace("\r\n", "\n")
    assert second == reply(model, history, n)
    history.append({"role": "assistant", "content": second})

    # Left-arrow moves within the line: "/hlp" mended into "/help".
    child.send("/hlp\x1b[D\x1b[De\r")
    child.expect_exact("/clear          forget the conversation")
    child.expect_exact("recall earlier ones.\r\n> ")

    # Ctrl-C during a reply stops it; the prompt comes back and the model
    # keeps what was shown.
    story = "Write a long story about a dragon who learns to bake bread."
    history.append({"role": "user", "content": story})
    opening = reply(model, history, 8)[:12]
    child.sendline(story)
    child.expect_exact(story + "\r\n")
    child.expect_exact(opening.replace("\n", "\r\n"))  # the reply has begun
    child.sendintr()
    child.expect_exact("\r\n> ")
    # (some terminals echo ^C, where it falls among the text still being written)
    shown = (opening + str(child.before).replace("\r\n", "\n").replace("^C", "")).removesuffix("\n")
    # what was shown is the reply's beginning, and the reply went on after it
    # (computed only that far: the whole runs up to 800 tokens)
    tokens = len(model.tokenizer.encode(shown))
    assert tokens < n - 16  # stopped by Ctrl-C, not by the length limit
    further = reply(model, history, tokens + 16)
    assert further.startswith(shown)
    assert len(shown) < len(further)
    assert child.isalive()
    history.append({"role": "assistant", "content": shown})

    follow = "What is the dragon's name?"
    history.append({"role": "user", "content": follow})
    assert ask(child, follow) == reply(model, history, n)

    # Ctrl-C at the prompt quits, cleanly.
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in transcript.getvalue()


def test_chat_commands_overflow_and_ctrl_d(model: llaf.Model) -> None:
    n, context = 24, 128
    child, transcript = spawn("chat", "--backend", SERVER_BACKEND, "--context", str(context), "-n", str(n))
    child.expect_exact("Ctrl-D or /quit quits.\r\n> ")

    # /system, then /clear: the replies are those of a fresh conversation.
    pirate = "You are a pirate. Answer like one."
    assert ask(child, f"/system {pirate}") == "(system message set)"
    hello = [{"role": "system", "content": pirate}, {"role": "user", "content": "Hello, who are you?"}]
    assert ask(child, "Hello, who are you?") == reply(model, hello, n)
    assert ask(child, "/system") == "(system message removed)"
    assert ask(child, "/clear") == "(conversation cleared)"
    germany = [{"role": "user", "content": "And of Germany?"}]
    assert ask(child, "And of Germany?") == reply(model, germany, n)
    assert ask(child, "/unknown") == ("llaf: unknown command /unknown: /help lists the commands (start a line "
                                      "with a space to send a / to the model)")

    # The conversation outgrows 128 tokens: the oldest turns make way, said
    # once, and every question gets its answer.
    answers = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo", "Egypt": "Cairo"}
    for country, city in answers.items():
        assert city in ask(child, f"What is the capital of {country}?")
    notice = (f"llaf: the conversation outgrew the context ({context} tokens with {n} for a reply): its oldest "
              "turns are left out from now on")
    assert transcript.getvalue().count(notice) == 1

    # A message that alone fills the context is refused; the chat goes on.
    long = "Please remember this: " + "one two three four five six seven eight nine ten " * 12
    said = ask(child, long)
    assert re.fullmatch(r"llaf: the last message needs \d+ tokens with the chat template, but the context "
                        rf"length is {context}: no room for the reply", said), said
    assert "Paris" in ask(child, "What is the capital of France?")

    quit_with_ctrl_d(child, transcript)


def test_loading_shows_a_progress_bar(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from llaf import generation

    monkeypatch.setattr(generation._LoadingBar, "DELAY", 0.0)  # as if loading took over a second
    # every step drawn, however fast (a step quicker than tqdm's 0.1 s between drawings was not)
    monkeypatch.setattr(generation._LoadingBar, "REDRAW", 0.0)
    llaf.load(backend=SERVER_BACKEND, context=64, progress=True)
    err = capsys.readouterr().err
    for step in ("weights", "tokenizer", f"into the {SERVER_BACKEND} engine"):
        assert f"loading {MODEL}: {step} |" in err
    # (how far the last drawing got depends on tqdm's redraw interval: not checked)
    llaf.load(backend=SERVER_BACKEND, context=64)
    assert capsys.readouterr().err == ""


def test_truncate_leaves_out_the_oldest_turns(model: llaf.Model) -> None:
    from llaf.errors import LlafError
    from llaf.generation import fit_chat

    tok = model.tokenizer
    system = {"role": "system", "content": "Be brief."}
    turns = [{"role": "user", "content": "What is the capital of France?"},
             {"role": "assistant", "content": "Paris."},
             {"role": "user", "content": "And of Germany?"},
             {"role": "assistant", "content": "Berlin."},
             {"role": "user", "content": "And of Italy?"}]
    whole = tok.chat([system, *turns])
    assert fit_chat(tok, [system, *turns], 10, len(whole) + 10) == (whole, 0, 10)
    # one token short: the first turn (a question and its answer) goes, the system message stays
    assert fit_chat(tok, [system, *turns], 10, len(whole) + 9) == (tok.chat([system, *turns[2:]]), 2, 10)
    last = tok.chat([system, turns[-1]])
    # only the last turn fits: the reply gets the room that is left
    assert fit_chat(tok, [system, *turns], 10, len(last) + 4) == (last, 4, 4)
    with pytest.raises(LlafError, match=rf"^the last message needs {len(last)} tokens with the chat template "
                                        rf"and the system message, but the context length is {len(last)}: "):
        fit_chat(tok, [system, *turns], 10, len(last))
    # through the API: the stream says how many messages it left out
    small = llaf.load(backend=SERVER_BACKEND, context=len(whole) + 9)
    stream = small.stream_chat([system, *turns], 10, truncate=True)
    assert stream.text() == model.chat([system, *turns[2:]], 10)
    assert stream.dropped_messages == 2
    with pytest.raises(LlafError, match="exceed the context length"):
        small.chat([system, *turns], 10)
    with pytest.raises(LlafError, match=r"^truncate must be True or False, got 'yes'$"):
        small.chat([system, *turns], 10, truncate="yes")  # type: ignore[arg-type]
