"""Misuse of the Python API: each wrong type or value is one `LlafError`
that names the argument and what it must be (never a raw TypeError,
AttributeError or jinja error from deep inside), and a `Cache`, whose engine
state each pass consumes, can neither be copied nor have its state set."""

from __future__ import annotations

import copy
import pickle
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import llaf
from llaf import LlafError

from .parity import assert_same_logits


@pytest.fixture(scope="module")
def model(backend: str) -> llaf.Model:
    return llaf.load(backend=backend, context=64)


def refused(message: str) -> Any:
    """pytest.raises for a LlafError whose whole message is `message`."""
    return pytest.raises(LlafError, match=f"^{re.escape(message)}$")


def test_a_prompt_must_be_text(model: llaf.Model) -> None:
    expected = "prompt must be a string (for token ids use stream_ids or stream_text), got 123"
    with refused(expected):
        model.generate(123)  # type: ignore[arg-type]
    with refused(expected.replace("123", "[1, 2]")):
        model.stream([1, 2])  # type: ignore[arg-type]


SHAPE = "messages must be a list of messages like {'role': 'user', 'content': 'Hello'}"


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("hello", f"{SHAPE}, got the string 'hello': for one user message give "
                  "[{'role': 'user', 'content': 'hello'}]"),
        ({"role": "user", "content": "Hi"}, f"{SHAPE}, got {{'content': 'Hi', 'role': 'user'}}"),
        (None, f"{SHAPE}, got None"),
        ([], "messages must not be empty: a chat needs at least one message"),
        (["Hi"], "message 0 must be a dict like {'role': 'user', 'content': 'Hello'}, got 'Hi'"),
        ([{"role": "user", "content": "Hi"}, {"role": "assistant"}],
         "message 1 has no 'content': give {'role': ..., 'content': ...}"),
        ([{"content": "Hi"}], "message 0 has no 'role': give {'role': ..., 'content': ...}"),
        ([{"role": "user", "content": 5}], "message 0's content must be a string, got 5"),
        ([{"role": None, "content": "Hi"}], "message 0's role must be a string, got None"),
    ],
)
def test_chat_messages_must_be_roles_and_contents(model: llaf.Model, messages: Any, message: str) -> None:
    with refused(message):
        model.chat(messages, 2)
    with refused(message):
        model.tokenizer.chat(messages)


def test_sampling_must_be_sampling_params(model: llaf.Model) -> None:
    expected = ("sampling must be a llaf.SamplingParams, e.g. SamplingParams(temperature=0.7) "
                "(greedy is the default), got 'greedy'")
    with refused(expected):
        model.generate("Hi", 2, sampling="greedy")  # type: ignore[arg-type]
    with refused(expected):
        model.stream_ids([1, 2], 2, "greedy")  # type: ignore[arg-type]
    with refused(expected.replace("sampling must", "params must").replace("'greedy'", "{'temperature': 0.5}")):
        llaf.Sampler({"temperature": 0.5})  # type: ignore[arg-type]
    assert model.generate("Hi", 4, sampling=None) == model.generate("Hi", 4)


def test_sampler_checks_its_ids_and_logits() -> None:
    with refused("seen must be a list of token ids (integers), got 5"):
        llaf.Sampler(seen=5)  # type: ignore[arg-type]
    with refused("logits must be a non-empty array of numbers, got 'x'"):
        llaf.Sampler().sample("x")  # type: ignore[arg-type]
    with refused("logits must be a non-empty array of numbers, got []"):
        llaf.Sampler().sample([])  # type: ignore[arg-type]
    assert llaf.Sampler(seen=iter([3, 4])).seen == {3, 4}  # any iterable of ids


def test_the_engine_functions_want_params(model: llaf.Model) -> None:
    expected = "params must be a llaf.Params (from llaf.init), got 'p'"
    calls: list[Callable[[], Any]] = [lambda: llaf.gen([1, 2], "p", 1), lambda: llaf.prefill("p", [1, 2]),
                                      lambda: llaf.forward("p", [1, 2]), lambda: llaf.Cache("p")]
    for call in calls:
        with refused(expected):
            call()
    with refused(expected.replace("'p'", "[1, 2]")):
        llaf.forward([1, 2], model.params)  # type: ignore[arg-type]  # arguments swapped


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ("Hello", "the prompt must be a list of token ids (integers), got 'Hello': encode text with the "
                  "model's tokenizer"),
        (None, "the prompt must be a list of token ids (integers), got None"),
        (7, "the prompt must be a list of token ids (integers), got 7"),
        ([1, 10**30], "token id 1000000000000000000000000000000 at position 1 is outside the vocabulary [0, 49152)"),
        (np.array([2**64 - 1], np.uint64),
         "token id 18446744073709551615 at position 0 is outside the vocabulary [0, 49152)"),
        ([1, None], "token ids must be integers, got object"),
    ],
)
def test_token_ids_are_checked_everywhere(model: llaf.Model, ids: Any, message: str) -> None:
    with refused(message):
        llaf.gen(ids, model.params, 1)
    with refused(message):
        model.stream_ids(ids, 1)


def test_token_ids_may_come_from_any_iterable(model: llaf.Model) -> None:
    ids = model.tokenizer.encode("Once upon a time")
    stream = model.stream_text(iter(ids), 4)
    assert stream.text() == model.generate("Once upon a time", 4)
    assert stream.prompt_tokens == len(ids)


def test_counts_must_be_integers(model: llaf.Model) -> None:
    with refused("max_new_tokens must be an integer, got '4'"):
        model.generate("Hi", "4")  # type: ignore[arg-type]
    with refused("the token count must be an integer, got None"):
        llaf.gen([1, 2], model.params, None)  # type: ignore[arg-type]


def test_cache_arguments(model: llaf.Model) -> None:
    with refused("slots must be an integer, got 'x'"):
        llaf.Cache(model.params, "x")  # type: ignore[arg-type]
    with refused("slots must be an integer, got 1.5"):
        llaf.Cache(model.params, 1.5)  # type: ignore[arg-type]
    with refused("capacity must be an integer, got '8'"):
        llaf.Cache(model.params, 1, "8")  # type: ignore[arg-type]
    with refused("the cache capacity must be in [1, 64], got 0"):  # not the default, as `0 or default` made it
        llaf.prefill(model.params, [1, 2], capacity=0)
    cache = llaf.Cache(model.params, 2, 8)
    with refused("feeds must be a dict {slot: token ids}, got [1, 2]"):
        cache.run([1, 2])  # type: ignore[arg-type]


def test_step_wants_a_cache_and_tokens(model: llaf.Model) -> None:
    with refused("cache must be a llaf.Cache (from llaf.prefill), got 'cache'"):
        llaf.step("cache", 1)  # type: ignore[arg-type]
    _, cache = llaf.prefill(model.params, [1, 2, 3])
    for token in (None, 1.5, "a", np.array(3)):
        with refused("token must be a token id (an integer), or a list of one per sequence of the cache, "
                     f"got {token!r}"):
            llaf.step(cache, token)
    assert cache.length == 3


def test_a_cache_cannot_be_copied_or_pickled(model: llaf.Model) -> None:
    """A copy shared the engine's cache with the original; a pass consumes
    it, and Futhark's API leaves using a consumed value undefined (issue 13
    saw a copy give wrong logits)."""
    ids = [1, 2, 3, 4]
    _, cache = llaf.prefill(model.params, ids)
    expected = ("a llaf.Cache cannot be copied or pickled: every pass consumes the engine's cache, so a copy "
                "would compute from a consumed one; for a second sequence run llaf.prefill again or use a Cache "
                "of several slots")
    for attempt in (copy.copy, copy.deepcopy, pickle.dumps):
        with refused(expected):
            attempt(cache)
    assert_same_logits(model.params, llaf.step(cache, 5), llaf.forward(model.params, [*ids, 5])[-1])


def test_the_state_of_a_cache_is_read_only(model: llaf.Model) -> None:
    _, cache = llaf.prefill(model.params, [[1, 2, 3], [4, 5]])
    for name, value in (("lengths", [0, 0]), ("length", 0), ("capacity", 64), ("params", model.params)):
        with refused(f"a Cache's {name} cannot be set: the cache keeps its own state (reset a slot with "
                     "cache.reset)"):
            setattr(cache, name, value)
    with pytest.raises(TypeError):
        cache.lengths[0] = 0  # type: ignore[index]
    assert cache.lengths == (3, 2)
    cache.reset(1)
    assert cache.lengths == (3, 0)
    _, one = llaf.prefill(model.params, [1, 2, 3])
    with refused("a Cache's length cannot be set: the cache keeps its own state (reset a slot with cache.reset)"):
        one.length = 1  # type: ignore[misc]
    assert one.length == 3


def test_params_share_their_weights_in_a_copy_and_refuse_pickling(model: llaf.Model) -> None:
    same = copy.copy(model.params)
    assert same.handle is model.params.handle
    np.testing.assert_array_equal(llaf.gen([1, 2], same, 3), llaf.gen([1, 2], model.params, 3))
    expected = ("llaf.Params cannot be pickled or deep-copied: its weights live in the engine of this process; "
                "load them again with llaf.init (or llaf.load) where they are needed")
    for attempt in (copy.deepcopy, pickle.dumps):
        with refused(expected):
            attempt(model.params)
    with refused(expected):
        pickle.dumps(model)


def test_load_and_init_check_their_options_before_loading() -> None:
    unknown = "unknown backend 'cpu': choose one of pyopencl, c, multicore, opencl, cuda"
    with refused(unknown):
        llaf.init("no-such-model", backend="cpu")  # the backend, not the missing weights
    with refused(unknown):
        llaf.load("no-such-model.gguf", backend="cpu")
    with refused("the context length must be an integer, got '64'"):
        llaf.load("no-such-model.gguf", context="64")  # type: ignore[arg-type]
    with refused("the context length must be positive, got 0"):
        llaf.load("no-such-model.gguf", context=0)


def test_a_stream_keeps_what_the_last_one_computed(backend: str) -> None:
    """The model keeps the cache of the last stream that ended: a chat's next
    turn computes only its new tokens (`cached_tokens`), and its reply is the
    one a model computing the whole prompt gives; a stream closed early
    leaves what it computed too."""
    model = llaf.load(backend=backend, context=512)
    first = [{"role": "user", "content": "Write a poem about the sea."}]
    stream = model.stream_chat(first, 30)
    reply = stream.text()
    assert (stream.cached_tokens, stream.finish_reason) == (0, "length")
    turn = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "Now a shorter one."}]
    stream = model.stream_chat(turn, 30)
    again = stream.text()
    # What the cache holds: the first prompt and the 29 tokens fed back (the 30th was the last).
    held = [int(t) for t in llaf.gen(model.tokenizer.chat(first), model.params, 29)]
    ids = model.tokenizer.chat(turn)
    shared = next((i for i, (a, b) in enumerate(zip(held, ids, strict=False)) if a != b), len(held))
    assert stream.cached_tokens == shared > len(model.tokenizer.chat(first))
    fresh = llaf.Model(model.name, model.params, model.tokenizer)
    stream = fresh.stream_chat(turn, 30)
    assert (stream.text(), stream.cached_tokens) == (again, 0)
    stream = model.stream("Once upon a time", 20)
    next(stream)
    stream.close()
    stream = model.stream("Once upon a time", 5)
    assert (stream.text(), stream.cached_tokens) == (fresh.generate("Once upon a time", 5), 3)
    # A copy has no kept cache of its own: its stream and the original's,
    # read in turns, do not feed one slot.
    twin = copy.copy(model)
    assert twin.params is model.params
    prompts = ["The history of Paris begins", "The history of London begins"]
    streams, texts = [model.stream(prompts[0], 12), twin.stream(prompts[1], 12)], ["", ""]
    while streams[0] or streams[1]:
        for i, s in enumerate(streams):
            piece = next(s, None) if s else None
            if piece is None:
                streams[i] = None
            else:
                texts[i] += piece
    assert texts == [fresh.generate(p, 12) for p in prompts]
