"""A model with its tokenizer: text in, text out, streamed token by token.

    model = llaf.load()                         # the default model, SmolLM2-135M-Instruct
    for piece in model.stream("Once upon a time"):
        print(piece, end="", flush=True)
    model.chat([{"role": "user", "content": "What is the capital of France?"}])

Generation runs one prefill of the prompt, then one cached step per token,
and stops at the model's end-of-turn token, at a stop string or after
`max_new_tokens`. Decoding is greedy unless sampling options say otherwise:

    model.generate("Once upon a time", 64, temperature=0.8, top_p=0.95, seed=1)
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import checks
from . import weights as weights_mod
from .assets import default_model_path
from .backend import check_threads, resolve_backend
from .errors import LlafError
from .logprobs import MAX_TOP_LOGPROBS, TokenLogprob, token_logprob
from .model import Cache, Params, check_fits, embed, into_engine, prompt_ids, step
from .sampling import GREEDY, Sampler, SamplingParams, sampling_params
from .tokenizer import Message, Tokenizer, chat_messages, for_model

DEFAULT_CONTEXT = 2048


class TokenStream(Iterator[int]):
    """The next tokens of a sequence, one at a time: one prefill of the
    prompt, then one cached step per token. It ends before an end-of-turn
    token or once a `json_schema`'s document is complete (`finish_reason`
    ``"stop"``), or after `max_new_tokens` tokens (``"length"``); `close()`
    ends it early. With `logprobs` (the number of alternatives to list, 0 to
    MAX_TOP_LOGPROBS), `logprobs` gathers a `TokenLogprob` per token
    generated (llaf/logprobs.py); else it stays empty.

    The model keeps the cache of the last stream that ended (`Model`), and
    the next one keeps what it shares with that stream's tokens:
    `cached_tokens` of the prompt are not computed again."""

    def __init__(self, model: Model, ids: Sequence[int], max_new_tokens: int,
                 sampling: SamplingParams = GREEDY, logprobs: int | None = None) -> None:
        max_new_tokens = checks.count("max_new_tokens", max_new_tokens)
        sampling = sampling_params("sampling", sampling)
        self.top_logprobs = check_logprobs(logprobs)
        self.logprobs: list[TokenLogprob] = []
        a = checks.token_ids("the prompt", ids, model.params.vocab)
        check_fits(a.size, max_new_tokens, model.params)  # before prompt_ids' check of the prompt alone
        prompt = prompt_ids(a, model.params).tolist()
        self.model = model
        self.prompt_tokens = len(prompt)
        self.cached_tokens = 0  # of the prompt's, those the model's kept cache held (set at the first token)
        self.finish_reason: str | None = None
        self._tokens = self._run(prompt, max_new_tokens, Sampler(sampling, prompt, tokenizer=model.tokenizer))

    def __next__(self) -> int:
        return next(self._tokens)

    def close(self) -> None:
        self._tokens.close()

    def _run(self, ids: list[int], max_new_tokens: int, sampler: Sampler) -> Generator[int, None, None]:
        if max_new_tokens == 0:
            self.finish_reason = "length"
            return
        cache, self.cached_tokens = self.model.cache_for(ids, max_new_tokens)
        try:
            yield from self._decode(cache, ids, max_new_tokens, sampler)
        except GeneratorExit:  # closed early: what the cache holds is whole
            self.model.keep(cache)
            raise
        self.model.keep(cache)  # (not after a failure: the engine's cache may be lost)

    def _decode(self, cache: Cache, ids: list[int], max_new_tokens: int,
                sampler: Sampler) -> Generator[int, None, None]:
        logits = cache.run({0: ids[self.cached_tokens:]})[0]
        for i in range(max_new_tokens):
            tok = sampler.sample(logits)
            if tok in self.model.tokenizer.eos_ids:
                self.finish_reason = "stop"
                return
            if self.top_logprobs is not None:
                self.logprobs.append(token_logprob(logits, tok, self.top_logprobs))
            yield tok
            if sampler.finished:  # the json_schema's document is complete: only the end could follow
                self.finish_reason = "stop"
                return
            if i + 1 < max_new_tokens:
                logits = step(cache, tok)
        self.finish_reason = "length"


class TextStream(Iterator[str]):
    """The continuation of a prompt as pieces of text, produced as the model
    generates them. A piece never ends inside a multi-byte character, and
    never shows a stop string or the text after it: text that could be the
    start of a stop string is held back until it is clear that it is not.

    When the stream is exhausted, `finish_reason` is ``"stop"`` (end of turn
    or a stop string) or ``"length"`` (`max_new_tokens` reached), and
    `completion_tokens` counts the tokens generated. `close()` ends it early.
    """

    def __init__(self, model: Model, ids: Sequence[int], max_new_tokens: int,
                 sampling: SamplingParams = GREEDY, logprobs: int | None = None) -> None:
        self.tokens = TokenStream(model, ids, max_new_tokens, sampling, logprobs)
        self.logprobs = self.tokens.logprobs  # filled as the tokens come (`logprobs`: how many alternatives)
        self.tokenizer = model.tokenizer
        self.stop = sampling.stop
        self.prompt_tokens = self.tokens.prompt_tokens
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.dropped_messages = 0  # set by Model.stream_chat(..., truncate=True)
        self._pieces = self._run()

    @property
    def cached_tokens(self) -> int:
        """Of the prompt's tokens, those the model's kept cache held (known once the first piece has come)."""
        return self.tokens.cached_tokens

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()
        self.tokens.close()

    def text(self) -> str:
        """The rest of the text at once."""
        return "".join(self)

    def _run(self) -> Generator[str, None, None]:
        pieces = TextPieces(self.tokenizer, self.stop)
        for tok in self.tokens:
            self.completion_tokens += 1
            piece = pieces.push(tok)
            if piece:
                yield piece
            if pieces.stopped:
                self.tokens.close()
                self.finish_reason = "stop"
                return
        rest = pieces.rest()
        if rest:
            yield rest
        self.finish_reason = self.tokens.finish_reason


def check_logprobs(logprobs: Any) -> int | None:
    """`logprobs`, the alternatives to list per token, checked: None or 0 to MAX_TOP_LOGPROBS."""
    if logprobs is None:
        return None
    n = checks.integer("logprobs", logprobs)
    if not 0 <= n <= MAX_TOP_LOGPROBS:
        raise checks.ArgumentError("logprobs", f"logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {n}")
    return n


def fit_chat(tokenizer: Tokenizer, messages: Sequence[Message], max_new_tokens: int,
             context: int) -> tuple[list[int], int, int]:
    """A conversation made to fit the context with room for the reply: the
    ids of `messages` without as many of their oldest turns as it takes (a
    turn runs from a user message to the next; a leading system message
    stays), the number of messages left out, and `max_new_tokens`, cut to
    the room left when even the last turn alone leaves too little. A
    LlafError when the last turn alone fills the context."""
    messages = chat_messages(messages)
    head = 1 if messages[0]["role"] == "system" else 0
    dropped = head
    while True:
        ids = tokenizer.chat(messages[:head] + messages[dropped:])
        if len(ids) + max_new_tokens <= context:
            return ids, dropped - head, max_new_tokens
        later = [i for i in range(dropped + 1, len(messages)) if messages[i]["role"] == "user"]
        if not later:
            break
        dropped = later[0]
    if len(ids) < context:
        return ids, dropped - head, context - len(ids)
    raise LlafError(f"the last message needs {len(ids)} tokens with the chat template"
                    f"{' and the system message' if head else ''}, but the context length is {context}: "
                    "no room for the reply")


class TextPieces:
    """A sequence's tokens, pushed one at a time, as the pieces of text they
    make: what `TextStream` yields, and what the server's scheduler streams
    for each sequence of its batch (the same code, so the same text).

    `push` returns the text a token lets show, often "" (a multi-byte
    character not yet whole, or text that may begin a stop string); once a
    stop string appears, `stopped` is set and nothing after it is shown.
    `rest` is the text held back, when the sequence ends otherwise."""

    def __init__(self, tokenizer: Tokenizer, stop: Sequence[str] = ()) -> None:
        self.decoding = tokenizer.decoding()
        self.stop = tuple(stop)
        self.text = ""  # what `decode` gives for the tokens so far
        self.shown = 0  # characters of that text shown so far
        self.stopped = False

    def push(self, tok: int) -> str:
        # The text of all the tokens: a token's bytes may complete a
        # character begun by the ones before it.
        self.text = text = self.decoding.push(tok)
        shown = self.shown
        hits = [i for i in (text.find(s, max(0, shown - len(s))) for s in self.stop) if i >= 0]
        if hits:
            self.stopped = True
            end = min(hits)
            return text[shown:end] if end > shown else ""
        if text.endswith("\ufffd"):
            return ""
        end = len(text) - held_back(text, self.stop)
        if end <= shown:
            return ""
        self.shown = end
        return text[shown:end]

    def rest(self) -> str:
        piece = self.text[self.shown:]
        self.shown = len(self.text)
        return piece


def held_back(text: str, stops: Sequence[str]) -> int:
    """The length of the longest end of `text` that is the start of a stop string."""
    longest = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), longest, -1):
            if s.startswith(text[-n:]):
                longest = n
                break
    return longest


@dataclass
class Model:
    """Weights in the engine plus the tokenizer that goes with them.

    The sampling options of `stream`, `generate`, `stream_chat` and `chat`
    are those of `SamplingParams` (temperature, top_k, top_p,
    repetition_penalty, seed, stop, min_p, presence_penalty,
    frequency_penalty, json_schema), given as keywords or as one
    `sampling=SamplingParams(...)`; by default decoding is greedy.
    """

    name: str
    params: Params
    tokenizer: Tokenizer
    # The cache of the last stream that ended: the next keeps what it shares
    # with it (a chat's next turn computes only its new messages), as
    # llama-cpp-python's Llama keeps its last prompt.
    _kept: Cache | None = field(default=None, init=False, repr=False, compare=False)

    def __copy__(self) -> Model:
        """The same weights and tokenizer, without the kept cache (two models
        taking one cache would feed their streams into the same slot)."""
        return replace(self)

    def cache_for(self, ids: Sequence[int], max_new_tokens: int) -> tuple[Cache, int]:
        """A one-sequence cache for `ids` and `max_new_tokens` after them,
        and how many of `ids` it holds already: the kept cache, rewound to
        what it `keeps` of `ids`, or a new one. It is the caller's until given back (`keep`)."""
        cache, self._kept = self._kept, None
        if cache is None or cache.params is not self.params:
            return Cache(self.params, 1, len(ids) + max_new_tokens), 0
        kept = cache.keeps(0, ids)
        cache.rewind(0, kept)
        return cache, kept

    def keep(self, cache: Cache) -> None:
        """Keep `cache` (of a sequence that ended) for the next stream's `cache_for`."""
        self._kept = cache

    def stream_ids(self, ids: Sequence[int], max_new_tokens: int,
                   sampling: SamplingParams = GREEDY, logprobs: int | None = None) -> TokenStream:
        """The next tokens, one at a time, until end of turn or the limit."""
        return TokenStream(self, ids, max_new_tokens, sampling, logprobs)

    def stream_text(self, ids: Sequence[int], max_new_tokens: int,
                    sampling: SamplingParams = GREEDY, logprobs: int | None = None) -> TextStream:
        """The continuation of `ids` as text pieces."""
        return TextStream(self, ids, max_new_tokens, sampling, logprobs)

    def stream(self, prompt: str, max_new_tokens: int = 128, *, sampling: SamplingParams | None = None,
               logprobs: int | None = None, **options: Any) -> TextStream:
        """The continuation of `prompt`, piece by piece; with `logprobs`
        (alternatives per token, 0-20), the stream's `logprobs` lists each
        generated token's log probability (llaf/logprobs.py)."""
        checks.instance("prompt", prompt, str, "a string (for token ids use stream_ids or stream_text)")
        return self.stream_text(self.tokenizer.encode(prompt), max_new_tokens, SamplingParams.of(sampling, options),
                                logprobs)

    def generate(self, prompt: str, max_new_tokens: int = 128, *, sampling: SamplingParams | None = None,
                 **options: Any) -> str:
        """The continuation of `prompt`."""
        return self.stream(prompt, max_new_tokens, sampling=sampling, **options).text()

    def stream_chat(self, messages: Sequence[Message], max_new_tokens: int = 256, *, truncate: bool = False,
                    sampling: SamplingParams | None = None, logprobs: int | None = None,
                    **options: Any) -> TextStream:
        """The assistant's reply to `messages` (the model's chat template), piece by piece.

        A conversation longer than the context, with room for `max_new_tokens`,
        is an error; with `truncate`, its oldest turns are left out instead
        (the system message stays; `fit_chat`), and the stream's
        `dropped_messages` counts them."""
        sampling = SamplingParams.of(sampling, options)
        if not checks.instance("truncate", truncate, bool, "True or False"):
            return self.stream_text(self.tokenizer.chat(messages), max_new_tokens, sampling, logprobs)
        max_new_tokens = checks.count("max_new_tokens", max_new_tokens)
        ids, dropped, max_new_tokens = fit_chat(self.tokenizer, messages, max_new_tokens, self.params.context)
        stream = self.stream_text(ids, max_new_tokens, sampling, logprobs)
        stream.dropped_messages = dropped
        return stream

    def embed(self, texts: str | Sequence[str], *, normalize: bool = True, batch: int = 8) -> np.ndarray:
        """Embeddings of a text (``[d]``) or texts (``[B][d]``, float32): the
        mean of the model's final hidden states (after its final norm) over
        the text's tokens, of unit length unless not `normalize`; `batch`
        texts share a pass. A decoder's pooled states, not a trained
        embedding model's: fine for rough similarity, no more."""
        one = isinstance(texts, str)
        items = [texts] if one else list(checks.instance("texts", texts, Sequence, "a string or a list of strings"))
        if not items:
            raise LlafError("texts is empty: give at least one text")
        for i, t in enumerate(items):
            checks.instance(f"texts[{i}]", t, str, "a string")
        batch = checks.count("batch", batch) or 1
        ids = [self.tokenizer.encode(t) for t in items]
        empty = [i for i, t in enumerate(ids) if not t]
        if empty:
            raise LlafError(f"texts[{empty[0]}] has no tokens: an embedding needs at least one")
        vecs = np.concatenate([embed(self.params, ids[i:i + batch], normalize) for i in range(0, len(ids), batch)])
        return vecs[0] if one else vecs

    def chat(self, messages: Sequence[Message], max_new_tokens: int = 256, *, truncate: bool = False,
             sampling: SamplingParams | None = None, **options: Any) -> str:
        """The assistant's reply to `messages` (`truncate`: as in `stream_chat`)."""
        return self.stream_chat(messages, max_new_tokens, truncate=truncate, sampling=sampling, **options).text()


def with_context(w: weights_mod.Weights, context: int | None) -> weights_mod.Weights:
    """`w` limited to a context of `context` tokens (never more than the model's; `load` checked it)."""
    if context is None or context >= w.context:
        return w
    if w.architecture == "gpt2":
        return replace(w, arrays=w.arrays | {"wpe": w.arrays["wpe"][:context]})
    return replace(w, hparams=w.hparams | {"context": context})


class _LoadingBar:
    """A progress bar on stderr over the three steps of `load`: reading the
    weights, the tokenizer, the weights into the engine (an array at a time).
    It is drawn only once loading has taken a second (tqdm's `delay`), and
    cleared when done."""

    STEPS = 3
    DELAY = 1.0  # seconds before the bar is drawn
    REDRAW = 0.1  # seconds at least between drawings (tqdm's `mininterval`)

    def __init__(self, name: str, enabled: bool) -> None:
        from tqdm import tqdm

        self.name = name
        self.done = 0.0
        self.bar = tqdm(total=self.STEPS, desc=f"loading {name}: weights", delay=self.DELAY,
                        mininterval=self.REDRAW, leave=False, disable=not enabled, file=sys.stderr,
                        bar_format="{desc} |{bar}| {percentage:3.0f}% {elapsed}")

    def step(self, what: str) -> None:
        """The previous step done; `what` next."""
        self._to(float(int(self.done) + 1))
        self.bar.set_description_str(f"loading {self.name}: {what}", refresh=False)

    def array(self, done: int, total: int) -> None:
        self._to(self.STEPS - 1 + done / total)

    def _to(self, done: float) -> None:
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        self.bar.close()


def model_source(model: str | Path | None) -> Any:
    """What `load` reads for `model`: the default model's file for None, else
    `weights.resolve`'s answer (its ``Path(...).name`` is the model's name)."""
    return default_model_path() if model is None else weights_mod.resolve(model)


def load(model: str | Path | None = None, backend: str | None = None,
         context: int | None = DEFAULT_CONTEXT, progress: bool = False, storage: str | None = None,
         threads: int | None = None, adapter: str | Path | None = None) -> Model:
    """Load a model and its tokenizer: a GGUF file (or a directory holding
    one, or its name among llaf's models, e.g. ``"SmolLM2-135M-Instruct"``),
    a Hugging Face directory, a llaf weight file or hub name for GPT-2; by
    default SmolLM2-135M-Instruct.
    `context` caps the context length (memory and time of the key/value cache);
    `storage` picks how the weights are kept (llaf/storage.py; by default a
    GGUF file's own quantized form); `threads`: the multicore backend's
    worker threads (default one per core); `progress` shows a progress bar
    on stderr when loading takes over a second; `adapter`: a directory of
    LoRA adapters (`llaf finetune`'s or peft's) merged into the weights
    (which are then f32: llaf/lora.py `merged`)."""
    # Arguments checked before minutes of loading.
    backend = resolve_backend(backend)
    check_threads(threads, backend)
    if context is not None and checks.integer("the context length", context) <= 0:
        raise LlafError(f"the context length must be positive, got {context}")
    source = model_source(model)
    name = Path(str(source)).name
    bar = _LoadingBar(name, progress)
    try:
        loaded = weights_mod.load(source, progress=progress, storage=storage)
        own = loaded is not source  # read here, not the caller's Weights: spent by the engine (`into_engine`)
        w = with_context(loaded, context)
        if adapter is not None:
            from .lora import Adapters, merged

            w = merged(w, Adapters.load(adapter, layers=w.shapes["attn_norm"][0]))
        bar.step("tokenizer")
        tokenizer = for_model(source, w.architecture)
        bar.step(f"into the {backend} engine")
        params = into_engine(w, backend, threads, each_array=bar.array, release=own)
    finally:
        bar.close()
    return Model(name, params, tokenizer)
