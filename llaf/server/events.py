"""The events of a request's generations, from the engine thread to its
response, and the two ways a response reads them: one JSON body when all
have come (`collect`), or server-sent events as they come (`sse`).

The engine thread puts, for each choice of a request, `Piece`s of text and
one `End`, then one `Done` for the request; or a `Failed` that ends it.
`Gone` is put by the event loop when the client disconnects. A request's
`Channel` carries them across threads; its `cancelled` flag goes the other
way, telling the engine thread that nobody reads any more.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from ..logprobs import TokenLogprob
from .errors import APIError


@dataclass(frozen=True)
class Piece:
    """The next text of choice `index`; `logprobs`, when asked for, are
    those of the tokens generated since its last piece."""

    index: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Usage:
    """Tokens a request's generations took: its prompts' (once however many
    choices each has), of those the ones whose keys and values a slot of the
    cache held already (not computed again), and those generated."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.cached_tokens + other.cached_tokens,
                     self.completion_tokens + other.completion_tokens)

    def body(self) -> dict[str, Any]:
        """OpenAI's usage object."""
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens}}


@dataclass(frozen=True)
class End:
    """Choice `index` has ended ("stop" or "length") after its tokens."""

    index: int
    finish_reason: str
    usage: Usage
    logprobs: tuple[TokenLogprob, ...] = ()  # of the tokens no piece has carried (one that made a stop string)


@dataclass(frozen=True)
class Done:
    """Every choice of the request has ended."""


@dataclass(frozen=True)
class Failed:
    """The request ends with `error` (the engine failed, the server shuts down)."""

    error: APIError


@dataclass(frozen=True)
class Gone:
    """The client has disconnected."""


Event = Piece | End | Done | Failed | Gone


class Channel:
    """One request's events, put by any thread and read on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_close: Callable[[Channel], None] | None = None) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.cancelled = threading.Event()  # set when the response ends: the engine stops generating
        self.on_close = on_close

    def put(self, event: Event) -> None:
        """From the engine thread: onto the event loop's queue."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except RuntimeError:  # the loop has closed (the server has stopped): nobody reads
            self.cancelled.set()

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        """The response has ended, however it ended."""
        self.cancelled.set()
        if self.on_close is not None:
            self.on_close(self)


async def _disconnection(request: Request, channel: Channel) -> None:
    """Put `Gone` on `channel` when the client of `request` disconnects."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    channel.queue.put_nowait(Gone())


@dataclass
class Collected:
    """A request's generations, whole: text, finish reason and token log
    probabilities (when asked for) per choice."""

    texts: list[str]
    reasons: list[str]
    usage: Usage
    logprobs: list[list[TokenLogprob]]


async def collect(request: Request, channel: Channel, n: int) -> Collected:
    """All events of a request of `n` choices. A client that disconnects
    while it waits cancels the generation (a 499, which nobody reads)."""
    out = Collected([""] * n, [""] * n, Usage(), [[] for _ in range(n)])
    # The request's body has been read: the next message from the client
    # is its disconnection, which a task waits for (polling between
    # tokens would never happen while tokens keep coming).
    watch = asyncio.create_task(_disconnection(request, channel))
    try:
        while True:
            event = await channel.get()
            if isinstance(event, Gone):
                raise APIError(499, "the client closed the connection")
            if isinstance(event, Piece):
                out.texts[event.index] += event.text
                out.logprobs[event.index] += event.logprobs
            elif isinstance(event, End):
                out.reasons[event.index] = event.finish_reason
                out.logprobs[event.index] += event.logprobs
                out.usage += event.usage
            elif isinstance(event, Failed):
                raise event.error
            else:
                return out
    finally:
        watch.cancel()
        channel.close()


def sse_line(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def sse(channel: Channel, first: list[dict[str, Any]],
              chunk: Callable[[int, str | None, str | None, tuple[TokenLogprob, ...]], dict[str, Any]],
              usage_chunk: Callable[[Usage], dict[str, Any]] | None) -> AsyncIterator[str]:
    """Server-sent events: `first` chunks, one chunk per piece, a final
    chunk per choice with its finish reason, usage if asked, [DONE]. An
    error after the response has begun is an event of OpenAI's error body."""
    usage = Usage()
    try:
        for c in first:
            yield sse_line(c)
        while True:
            event = await channel.get()
            if isinstance(event, Piece):
                yield sse_line(chunk(event.index, event.text, None, event.logprobs))
            elif isinstance(event, End):
                usage += event.usage
                yield sse_line(chunk(event.index, None, event.finish_reason, event.logprobs))
            elif isinstance(event, Failed):
                yield sse_line(event.error.body())
                break
            elif isinstance(event, Done):
                if usage_chunk is not None:
                    yield sse_line(usage_chunk(usage))
                break
        yield "data: [DONE]\n\n"
    finally:
        channel.close()


class EventStream(StreamingResponse):
    """Server-sent events that cancel their generation however the response
    ends (a client that disconnects makes the next write fail)."""

    def __init__(self, events: AsyncIterator[str], channel: Channel) -> None:
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.channel = channel

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.channel.close()
