"""Continuous batching: the one thread that runs the engine, for every request.

The Futhark engine is not thread-safe, so one thread touches the model. It
loops: it admits waiting sequences, in arrival order, into the free slots of
one key/value cache of `max_batch` slots; runs one pass of the engine
(`Cache.run`) that feeds each new sequence its prompt and each running
sequence its last token; then samples each sequence's next token with that
sequence's own `Sampler` (its options and seed) and sends the text it makes
to the request's `Channel`. A sequence leaves the batch between passes when
it ends (end of turn, stop string, its token limit, its JSON document
complete) or when nobody reads it any more (its client has gone); its slot
is then free for the next in line.

Each sequence's logits are the ones it gets alone (the engine computes a
token's sums the same way whatever its batch: tests/test_batch.py), and its
sampler and text are its own, so a request's output does not depend on what
else runs beside it.

A request of several prompts has one sequence per prompt and choice
(OpenAI's `n`: choice `j` of prompt `i` is index `i * n + j`, and draws
from its own seed stream, llaf/sampling.py's `Sampler`), which run side by
side and queue one after another. Each choice prefills its prompt itself.

Other work on the engine (embeddings) runs on this thread too, between
passes (`call`).

A pass takes at most PROMPT_TOKENS_A_PASS prompt tokens beside the running
sequences' next tokens: a long prompt is fed in parts over several passes
(as vLLM's chunked prefill and llama.cpp's batches do), so that the streams
under way are not held up for the whole prompt's time; a prompt that gets
no room in a pass waits for the next, in arrival order. A token's keys and
values are the same whichever pass computes them (`Cache`), so the output
does not change.

A slot keeps what its last sequence computed. A new sequence goes to the
free slot whose tokens begin as its prompt does for longest, keeps those
tokens' keys and values and is fed the rest of its prompt: a conversation's
next turn computes only its new messages. As in llama.cpp's server, a slot
is chosen for what it shares only when that is at least half of what it
holds (else the slot left longest ago is taken): a new chat sharing just
the system prompt with a slot's long conversation leaves that conversation
for its next turn. The output is the same either way (`Cache`: the kept
keys and values are the same bit for bit). Usage reports the kept tokens
as OpenAI's `cached_tokens`.

Memory: the cache holds `max_batch` sequences of up to the context length
each. It starts at a few positions a slot and doubles when a sequence needs
more, so its size follows the longest sequence so far, never more than
max_batch x context positions (`serve` checks at startup that so much fits).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checks import ArgumentError
from ..generation import Model, TextPieces
from ..logprobs import TokenLogprob, token_logprob
from ..model import Cache
from ..sampling import Sampler, SamplingParams
from .errors import APIError
from .events import Channel, Done, End, Failed, Piece, Usage
from .limits import DEFAULT_MAX_BATCH
from .metrics import Metrics

FIRST_CAPACITY = 256  # positions a slot starts with; the cache doubles as needed, up to the context
# Prompt tokens a pass takes at most (a prompt longer is fed over several
# passes). A 1500-token prompt joining a stream (benchmarks/long_prompt.py,
# SmolLM2, two cores) held it up for 10 s whole, 2.7-3.1 s at most in
# parts of 256, 1.8-2.2 in parts of 128, 1.3 in parts of 64, its own first
# token coming as soon in each; 128 keeps the passes few when many short
# prompts arrive together. (With `--max-batch 16` a pass then holds at
# most 144 tokens: the native builds multiply up to 160 with the grouped
# kernel, src/target.fut `dense_above`, faster there than an f32 copy of the
# matrices.)
PROMPT_TOKENS_A_PASS = 128


@dataclass(eq=False)
class Job:
    """One request: its prompts, each with its token limit and `n` choices,
    and where its events go; `logprobs`: alternatives to list per token
    (None: no log probabilities)."""

    prompts: list[list[int]]
    max_tokens: list[int]
    sampling: SamplingParams
    channel: Channel
    n: int = 1
    logprobs: int | None = None
    left: int = 0  # choices not yet ended (the engine thread's)
    over: bool = False  # ended, cancelled or failed: its other choices are dropped
    submitted: float = field(default_factory=time.monotonic)
    answered: bool = False  # a first token has been generated (time to first token)


@dataclass(eq=False)
class Choice:
    """One choice of a job (one prompt's generation) on its way through the batch."""

    job: Job
    index: int
    prompt: list[int]
    max_tokens: int
    sampler: Sampler
    pieces: TextPieces
    slot: int = -1
    cached: int = 0  # the prompt's first tokens its slot held already
    feed: list[int] = field(default_factory=list)  # the tokens of the next pass
    completion_tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)  # of tokens not yet sent with a piece


class Scheduler:
    """The engine's thread and the batch it decodes. `submit` is called on
    the event loop; everything else runs on the engine thread."""

    def __init__(self, model: Model, max_batch: int = DEFAULT_MAX_BATCH,
                 new_cache: Callable[[int], Cache] | None = None, metrics: Metrics | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model = model
        self.max_batch = max_batch
        first = min(FIRST_CAPACITY, model.params.context)
        self.new_cache = new_cache or (lambda slots: Cache(model.params, slots, first))
        self.cache: Cache | None = None  # made on the engine thread at the first pass
        self.lock = threading.Condition()  # reentrant: held around the sweep that ends jobs
        self.waiting: deque[Choice] = deque()  # under `lock`
        self.calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()  # under `lock`: `call`'s work
        self.metrics = metrics or Metrics()
        self.running: dict[int, Choice] = {}  # by slot; the engine thread's
        self.closing = threading.Event()
        # Counts for /health (written on the engine thread, read anywhere).
        self.pending = 0  # jobs submitted and not over
        self.served = 0  # jobs that ran to the end
        self.cancelled = 0  # jobs ended early because their clients went away
        self.largest_batch = 0  # the most sequences one pass has decoded
        self.passes = 0  # passes run (the engine thread's)
        self.last_pass = [0] * max_batch  # by slot: the last pass that fed it
        self.thread = threading.Thread(target=self._loop, name="llaf-engine", daemon=True)

    # ----- the event loop's side

    def submit(self, job: Job) -> None:
        """Queue `job`'s choices behind those already waiting."""
        job.left = len(job.prompts) * job.n
        # A sampler and a detokenizer per choice, as a TextStream alone has.
        # (With a json_schema, each choice has its own matcher of it.)
        tokenizer = self.model.tokenizer
        seqs = [Choice(job, i * job.n + j, ids, limit, Sampler(job.sampling, ids, choice=j, tokenizer=tokenizer),
                       TextPieces(tokenizer, job.sampling.stop))
                for i, (ids, limit) in enumerate(zip(job.prompts, job.max_tokens, strict=True)) for j in range(job.n)]
        with self.lock:
            if not self.thread.is_alive() and not self.closing.is_set():
                self.thread.start()
            self.pending += 1
            self.waiting.extend(seqs)
            self.lock.notify()

    def call(self, work: Callable[[], Any]) -> Future[Any]:
        """Run `work` on the engine thread between passes (the engine is not
        thread-safe); its result or exception in the future."""
        future: Future[Any] = Future()
        with self.lock:
            if self.closing.is_set():
                raise RuntimeError("the engine has stopped")
            if not self.thread.is_alive():
                self.thread.start()
            self.calls.append((work, future))
            self.lock.notify()
        return future

    @property
    def n_waiting(self) -> int:
        return len(self.waiting)

    @property
    def n_running(self) -> int:
        return len(self.running)

    def close(self) -> None:
        """Stop after the current pass; sequences under way are dropped
        (their responses have been told, or are being torn down)."""
        with self.lock:
            self.closing.set()
            self.lock.notify()

    # ----- the engine thread

    def _loop(self) -> None:
        while True:
            with self.lock:
                while not self.waiting and not self.running and not self.calls and not self.closing.is_set():
                    self.lock.wait()
                if self.closing.is_set():
                    for _, future in self.calls:
                        future.cancel()
                    return
                calls, self.calls = list(self.calls), deque()
            for work, future in calls:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(work())
                    except Exception as e:  # the caller's to report
                        future.set_exception(e)
            try:
                with self.lock:
                    self._drop_cancelled()
                    self._admit()
                if self.running:
                    self._pass()
            except Exception as e:  # a bug of the scheduler's own: end what is under way, keep the thread
                error = APIError(500, f"generation failed: {e}", type="server_error")
                self.cache = None
                for seq in [*self.running.values(), *self.waiting]:
                    self._fail(seq, error)

    def _drop_cancelled(self) -> None:
        """Sequences nobody reads leave: a client gone frees its slot before the next pass."""
        for seq in [*self.running.values(), *self.waiting]:
            if seq.job.channel.cancelled.is_set() and not seq.job.over:
                self._job_over(seq.job)
                self.cancelled += 1
        self.waiting = deque(s for s in self.waiting if not s.job.over)
        for seq in list(self.running.values()):
            if seq.job.over:
                self._leave(seq)

    def _admit(self) -> None:
        """Waiting sequences, first come first served, into free slots: each
        into the one that keeps most of its prompt (module docstring), else
        the one left longest ago; it keeps what that slot shares with it (at
        least its last token is fed, for the logits after it)."""
        free = [s for s in range(self.max_batch) if s not in self.running]
        while self.waiting and free:
            seq = self.waiting.popleft()
            seq.slot, seq.cached = self._slot_for(seq.prompt, free)
            if self.cache is not None:
                self.cache.rewind(seq.slot, seq.cached)
            free.remove(seq.slot)
            seq.feed = seq.prompt[seq.cached:]
            self.running[seq.slot] = seq

    def _slot_for(self, prompt: list[int], free: list[int]) -> tuple[int, int]:
        """The free slot for `prompt`, and how many of its first tokens that slot keeps."""
        cache = self.cache
        if cache is None:  # (made at the first pass, or lost in a failed one: nothing to keep)
            return free[0], 0
        kept, held = {s: cache.keeps(s, prompt) for s in free}, cache.lengths
        # What a slot keeps counts when it is at least half of what the slot
        # holds; among the rest, the slot left longest ago.
        slot = max(free, key=lambda s: (kept[s] if 2 * kept[s] >= held[s] else 0, -self.last_pass[s]))
        return slot, kept[slot]

    def _feeds(self) -> dict[int, list[int]]:
        """The tokens of the next pass, by slot: each running sequence's next
        token, and of the prompts, in arrival order, as many tokens as
        PROMPT_TOKENS_A_PASS leaves room for."""
        feeds = {seq.slot: seq.feed for seq in self.running.values() if len(seq.feed) == 1}
        room = PROMPT_TOKENS_A_PASS
        for seq in self.running.values():  # (in the order they were admitted)
            if len(seq.feed) > 1 and room > 0:
                feeds[seq.slot] = seq.feed[:room]
                room -= len(feeds[seq.slot])
        return feeds

    def _pass(self) -> None:
        """One pass for the batch, then the next token of each sequence whose
        prompt is all in."""
        self.largest_batch = max(self.largest_batch, len(self.running))
        feeds = self._feeds()
        batch = [self.running[slot] for slot in feeds]
        self.passes += 1
        for seq in self.running.values():
            self.last_pass[seq.slot] = self.passes
        try:
            if self.cache is None:
                self.cache = self.new_cache(self.max_batch)
            logits = self.cache.run(feeds)
        except Exception as e:  # the engine failed: these requests end with a 500, the server keeps serving
            self.cache = None  # its state is unknown: a fresh one for the next pass
            error = APIError(500, f"generation failed: {e}", type="server_error")
            for seq in list(self.running.values()):  # (a prompt fed in part lost its part with the cache)
                self._fail(seq, error)
            return
        ready = []  # the sequences whose prompt is all in, and their logits
        for seq, row in zip(batch, logits, strict=True):
            seq.feed = seq.feed[len(feeds[seq.slot]):]
            if not seq.feed:  # (else the rest of its prompt in the next passes)
                ready.append((seq, row))
        # Every token drawn before any text goes out: the event loop, woken
        # by each piece sent, held up the draws (16 sequences sampled at
        # temperature 0.7: 10-11 ms between passes, now 7; docs/PERFORMANCE.md).
        drawn = [self._draw(seq, row) for seq, row in ready]
        for (seq, row), tok in zip(ready, drawn, strict=True):
            if isinstance(tok, APIError):
                self._fail(seq, tok)
                continue
            try:
                self._next_token(seq, row, tok)
            except Exception as e:  # decoding its text failed: this request ends with a 500
                self._fail(seq, APIError(500, f"generation failed: {e}", type="server_error"))

    @staticmethod
    def _draw(seq: Choice, logits: np.ndarray) -> int | APIError | None:
        """`seq`'s next token, or the error that ends its request (None: its
        job is over already)."""
        if seq.job.over:
            return None
        try:
            return seq.sampler.sample(logits)
        except ArgumentError as e:  # its request's fault (a json_schema the matcher gave up on): a 400
            # (the API's json_schema is its response_format's)
            return APIError(400, str(e), param="response_format" if e.param == "json_schema" else e.param)
        except Exception as e:  # sampling failed: this request ends with a 500
            return APIError(500, f"generation failed: {e}", type="server_error")

    def _next_token(self, seq: Choice, logits: np.ndarray, tok: int | None) -> None:
        """Stream the text of `tok`, end the sequence or feed the token back:
        what TokenStream and TextStream do for a sequence alone."""
        if seq.job.over or tok is None:  # its job failed or was cancelled in this very pass
            self._leave(seq)
            return
        if not seq.job.answered:
            seq.job.answered = True
            self.metrics.time_to_first_token.observe(time.monotonic() - seq.job.submitted)
        if tok in self.model.tokenizer.eos_ids:
            self._end(seq, "stop")
            return
        seq.completion_tokens += 1
        if seq.job.logprobs is not None:
            seq.logprobs.append(token_logprob(logits, tok, seq.job.logprobs))
        piece = seq.pieces.push(tok)
        if piece:
            seq.job.channel.put(Piece(seq.index, piece, tuple(seq.logprobs)))
            seq.logprobs.clear()
        if seq.pieces.stopped:
            self._end(seq, "stop")
        elif seq.sampler.finished or seq.completion_tokens == seq.max_tokens:
            rest = seq.pieces.rest()
            if rest:
                seq.job.channel.put(Piece(seq.index, rest, tuple(seq.logprobs)))
                seq.logprobs.clear()
            # A json_schema's document complete: only the end of turn could follow.
            self._end(seq, "stop" if seq.sampler.finished else "length")
        else:
            seq.feed = [tok]

    def _end(self, seq: Choice, reason: str) -> None:
        job = seq.job
        # A prompt counts once however many choices it has (OpenAI's usage).
        first = seq.index % job.n == 0
        usage = Usage(len(seq.prompt) if first else 0, seq.cached if first else 0, seq.completion_tokens)
        self.metrics.prompt_tokens.inc(usage.prompt_tokens)
        self.metrics.cached_tokens.inc(usage.cached_tokens)
        self.metrics.completion_tokens.inc(usage.completion_tokens)
        job.channel.put(End(seq.index, reason, usage, tuple(seq.logprobs)))
        self._leave(seq)
        job.left -= 1
        if job.left == 0:
            # counted before the client hears of it: /health right after a
            # response must not still show the request
            self._job_over(job)
            self.served += 1
            job.channel.put(Done())

    def _fail(self, seq: Choice, error: APIError) -> None:
        """End `seq`'s job with `error`; its other choices leave too."""
        if not seq.job.over:
            self._job_over(seq.job)
            seq.job.channel.put(Failed(error))
            with self.lock:
                self.waiting = deque(s for s in self.waiting if not s.job.over)
            for other in list(self.running.values()):
                if other.job is seq.job:
                    self._leave(other)
        self._leave(seq)

    def _leave(self, seq: Choice) -> None:
        if self.running.get(seq.slot) is seq:
            del self.running[seq.slot]

    def _job_over(self, job: Job) -> None:
        with self.lock:  # `submit` counts on the event loop's thread
            if not job.over:
                job.over = True
                self.pending -= 1
