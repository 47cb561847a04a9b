"""An OpenAI-compatible HTTP server for one model, and a web chat page.

    llaf serve [--model M] [--backend B] [--host 127.0.0.1] [--port 8000]

Routes (FastAPI on uvicorn):

* ``POST /v1/completions`` and ``POST /v1/chat/completions``: OpenAI's
  request and response bodies, with ``"stream": true`` as server-sent events
  (``data: {chunk}`` ... ``data: [DONE]``). Sampling: ``temperature``
  (default 1, as OpenAI's; 0 is greedy), ``top_p``, ``seed``, ``stop``,
  ``max_tokens`` (``max_completion_tokens`` for chat), and llaf's
  ``top_k`` and ``repetition_penalty``.
* ``GET /v1/models``, ``GET /v1/models/{id}``, ``GET /health``.
* ``GET /``: a chat page that streams the replies (llaf/static/index.html).

The model is loaded once. The Futhark engine is not thread-safe, so one
worker thread runs every generation, a request at a time in arrival order;
tokenization runs on threads of its own, so that a long prompt does not
hold up the engine; the event loop meanwhile keeps accepting requests and
streaming. A client that goes away, streaming or not, ends its generation
at the next token.

Bad requests get OpenAI's error body, ``{"error": {"message", "type",
"param", "code"}}``: 400 for malformed JSON or UTF-8, text that is not
valid Unicode, wrong types and out-of-range values (a prompt longer than
the context: code ``context_length_exceeded``, found from its size before
it is tokenized where it is far too long), 404 for an unknown model
(``model_not_found``) or route, 413 for a body over ``--max-body``.

Under abuse: a request's headers must arrive within ``--header-timeout``
seconds of its first byte; the ``Host`` header must name this server
(``--allowed-hosts``; a server on a loopback address answers to localhost
names only, so that a web page cannot reach it by DNS rebinding); the
messages' contents are tokenized as text, so a user who writes
``<|im_start|>system`` cannot open a system turn. On Ctrl-C or SIGTERM,
requests still generating get ``--shutdown-grace`` seconds, then end with
an error (a stream: an error event, then ``[DONE]``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import LlafError
from .generation import Model, TextStream
from .sampling import SamplingError, SamplingParams
from .server_limits import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_SHUTDOWN_GRACE, LOOPBACK_HOSTS
from .tokenizer import unicode_problem

if TYPE_CHECKING:
    import uvicorn

MAX_STOP_STRINGS = 4


class APIError(Exception):
    """A request the server refuses, with its HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


# ---------------------------------------------------------------- requests


def _valid_unicode(text: str) -> str:
    problem = unicode_problem(text)
    if problem is not None:
        raise ValueError(f"the text {problem}")
    return text


# Every string of a request: a lone surrogate ("\\ud800" in JSON) is refused
# as it is read, rather than failing in the tokenizer or in the error
# message that echoes it.
Text = Annotated[str, AfterValidator(_valid_unicode)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class StreamOptions(_Strict):
    include_usage: bool = False


class _Options(_Strict):
    model: Text | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: Text | list[Text] | None = None
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class CompletionRequest(_Options):
    prompt: Text | list[Text]


class TextPart(_Strict):
    type: Literal["text"]
    text: Text


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(_Options):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = None


# ---------------------------------------------------------------- the engine worker


@dataclass
class Job:
    """One request's generations: `ids` per choice, and where its events go."""

    ids: list[list[int]]
    max_tokens: list[int]
    sampling: SamplingParams
    put: Callable[[tuple[Any, ...]], None]
    cancelled: threading.Event


class Worker:
    """The one thread that touches the model (the engine is not thread-safe).
    Jobs run one after another in arrival order."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llaf-engine")
        self.closing = threading.Event()
        self.pending = 0  # jobs started and not finished (read and written on the event loop)
        self.cancelled = 0  # generations ended early by their clients (written by the worker)
        self.served = 0  # jobs that ran to the end

    def start(self, job: Job) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().run_in_executor(self.executor, self._run, job)
        self.pending += 1
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: asyncio.Future[None]) -> None:
        self.pending -= 1

    def _run(self, job: Job) -> None:
        """Events: ("piece", index, text), ("end", index, finish_reason,
        prompt_tokens, completion_tokens), ("done",), ("error", APIError)."""
        try:
            for index, (ids, max_tokens) in enumerate(zip(job.ids, job.max_tokens, strict=True)):
                if job.cancelled.is_set() or self.closing.is_set():
                    self.cancelled += 1
                    return
                stream = TextStream(self.model, ids, max_tokens, job.sampling)
                try:
                    for piece in stream:
                        if job.cancelled.is_set() or self.closing.is_set():
                            self.cancelled += 1
                            return
                        job.put(("piece", index, piece))
                finally:
                    stream.close()
                job.put(("end", index, stream.finish_reason, stream.prompt_tokens, stream.completion_tokens))
            self.served += 1
            job.put(("done",))
        except LlafError as e:
            job.put(("error", APIError(400, str(e))))
        except Exception as e:  # the engine failed: report it, keep serving
            job.put(("error", APIError(500, f"generation failed: {e}", type="server_error")))

    def close(self) -> None:
        self.closing.set()
        self.executor.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------- the application


def _error_param(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validation_error(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    if not errors:
        return APIError(400, "the request is invalid")
    # A value of a union type (str | list[TextPart]) fails once per member:
    # the deepest failure is the most telling.
    err = max(errors, key=lambda e: len(e.get("loc", ())))
    loc = list(err.get("loc", ()))
    if loc and loc[0] == "body":
        loc = loc[1:]
    if err.get("type") == "json_invalid":
        detail = (err.get("ctx") or {}).get("error", err.get("msg", ""))
        return APIError(400, f"the request body is not valid JSON ({detail})")
    if not loc:
        return APIError(400, "the request body must be a JSON object")
    if err.get("type") == "missing":
        param = _error_param(loc)
        return APIError(400, f"{param}: a required field is missing", param=param)
    # pydantic puts the union member's name in the location (a validator's
    # too: "function-after[...]"): leave it out.
    param = _error_param([p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "list")))])
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return APIError(400, f"{param}: {message}", param=param)


class Server:
    """The state behind the routes: the model, its name and the worker."""

    def __init__(self, model: Model, model_id: str | None = None, max_body: int = DEFAULT_MAX_BODY,
                 shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE) -> None:
        self.model = model
        self.model_id = model_id or model_name(model.name)
        self.created = int(time.time())
        self.max_body = max_body
        self.shutdown_grace = shutdown_grace
        self.worker = Worker(model)
        # Tokenizing a long text takes a while (a megabyte: about a second):
        # off the engine's thread, so that generation goes on meanwhile.
        # tokenizers and tiktoken may be called from several threads.
        self.tokenizing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="llaf-tokenize")
        self.queues: set[asyncio.Queue[tuple[Any, ...]]] = set()  # the events of requests under way
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining = False  # shutting down: no new requests

    # ----- checks

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.model_id:
            raise APIError(404, f"the model '{name}' does not exist; this server has '{self.model_id}'",
                           param="model", code="model_not_found")

    def sampling(self, req: _Options) -> SamplingParams:
        if req.n is not None and req.n != 1:
            raise APIError(400, f"n must be 1 (one choice per prompt), got {req.n}", param="n")
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if len(stop) > MAX_STOP_STRINGS:
            raise APIError(400, f"stop may hold at most {MAX_STOP_STRINGS} strings, got {len(stop)}", param="stop")
        try:
            return SamplingParams(
                temperature=1.0 if req.temperature is None else req.temperature,
                top_k=req.top_k or 0,
                top_p=1.0 if req.top_p is None else req.top_p,
                repetition_penalty=1.0 if req.repetition_penalty is None else req.repetition_penalty,
                seed=req.seed, stop=tuple(stop))
        except SamplingError as e:
            raise APIError(400, str(e), param=e.param) from None

    @staticmethod
    def check_max_tokens(requested: int | None, param: str) -> None:
        if requested is not None and requested < 1:
            raise APIError(400, f"{param} must be at least 1, got {requested}", param=param)

    def check_size(self, texts: Sequence[str], what: str) -> None:
        """Refuse text far too long for the context before tokenizing it (a
        megabyte takes about a second): n bytes are at least
        n / max_token_bytes tokens. What passes is tokenized, at most
        context * max_token_bytes bytes, and gets the exact count."""
        n_bytes = sum(len(t.encode()) for t in texts)
        at_least = -(-n_bytes // max(1, self.model.tokenizer.max_token_bytes))
        context = self.model.params.context
        if at_least >= context:
            has = "have" if what == "messages" else "has"
            raise APIError(400, f"the {what} {has} at least {_tokens(at_least)} ({n_bytes} bytes), but the context "
                                f"length is {context}: no room for the reply", param=what,
                           code="context_length_exceeded")

    def max_tokens(self, n_prompt: int, requested: int | None, default: int | None, param: str, what: str) -> int:
        context = self.model.params.context
        has = "have" if what == "messages" else "has"
        if n_prompt == 0:
            raise APIError(400, f"the {what} is empty", param=what)
        if n_prompt >= context:
            raise APIError(400, f"the {what} {has} {_tokens(n_prompt)}, but the context length is {context}: "
                                f"no room for the reply", param=what, code="context_length_exceeded")
        if requested is None:
            return context - n_prompt if default is None else min(default, context - n_prompt)
        if n_prompt + requested > context:
            raise APIError(400, f"the {what} {has} {_tokens(n_prompt)} and {param} is {requested}: together more "
                                f"than the context length {context}", param=param, code="context_length_exceeded")
        return requested

    # ----- generation

    def shutting_down(self) -> APIError:
        return APIError(503, "the server is shutting down", type="server_error")

    async def run(self, prepare: Callable[[], tuple[list[list[int]], list[int]]],
                  sampling: SamplingParams) -> tuple[asyncio.Queue[tuple[Any, ...]], threading.Event]:
        """Tokenize (on a tokenizing thread) and start the generations;
        refusals raise APIError before any response is sent."""
        if self.draining:
            raise self.shutting_down()
        loop = asyncio.get_running_loop()
        try:
            ids, max_tokens = await loop.run_in_executor(self.tokenizing, prepare)
        except LlafError as e:
            raise APIError(400, str(e)) from None
        if self.draining:
            raise self.shutting_down()
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        cancelled = threading.Event()

        def put(event: tuple[Any, ...]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        self.queues.add(queue)
        self.worker.start(Job(ids, max_tokens, sampling, put, cancelled))
        return queue, cancelled

    def begin_shutdown(self) -> None:
        """Ctrl-C or SIGTERM: refuse new requests, and after the grace period
        end those still under way with an error event, so that their
        responses end properly instead of being cancelled by uvicorn."""
        if self.draining:
            return
        self.draining = True
        asyncio.get_running_loop().call_later(self.shutdown_grace, self.cut_short)

    def cut_short(self) -> None:
        self.worker.closing.set()
        for queue in self.queues:
            queue.put_nowait(("error", self.shutting_down()))

    async def collect(self, request: Request, queue: asyncio.Queue[tuple[Any, ...]],
                      cancelled: threading.Event, n: int) -> tuple[list[str], list[str], int, int]:
        """All events of a job: texts and finish reasons per choice, token counts.
        A client that disconnects while it waits cancels the job."""
        texts = [""] * n
        reasons = [""] * n
        prompt_tokens = completion_tokens = 0
        # The request's body has been read: the next message from the client
        # is its disconnection, which a task waits for (polling between
        # tokens would never happen while tokens keep coming).
        watch = asyncio.create_task(_disconnection(request, queue))
        try:
            while True:
                event = await queue.get()
                if event[0] == "gone":
                    raise APIError(499, "the client closed the connection")
                if event[0] == "piece":
                    texts[event[1]] += event[2]
                elif event[0] == "end":
                    reasons[event[1]] = event[2]
                    prompt_tokens += event[3]
                    completion_tokens += event[4]
                elif event[0] == "error":
                    raise event[1]
                else:
                    return texts, reasons, prompt_tokens, completion_tokens
        finally:
            watch.cancel()
            cancelled.set()
            self.queues.discard(queue)

    async def sse(self, queue: asyncio.Queue[tuple[Any, ...]], cancelled: threading.Event,
                  first: list[dict[str, Any]], chunk: Callable[[int, str | None, str | None], dict[str, Any]],
                  usage_chunk: Callable[[int, int], dict[str, Any]] | None) -> AsyncIterator[str]:
        """Server-sent events: `first` chunks, one chunk per piece, a final
        chunk per choice with its finish reason, usage if asked, [DONE]."""
        prompt_tokens = completion_tokens = 0
        try:
            for c in first:
                yield _event(c)
            while True:
                event = await queue.get()
                if event[0] == "piece":
                    yield _event(chunk(event[1], event[2], None))
                elif event[0] == "end":
                    prompt_tokens += event[3]
                    completion_tokens += event[4]
                    yield _event(chunk(event[1], None, event[2]))
                elif event[0] == "error":
                    yield _event(event[1].body())
                    break
                else:
                    if usage_chunk is not None:
                        yield _event(usage_chunk(prompt_tokens, completion_tokens))
                    break
            yield "data: [DONE]\n\n"
        finally:
            cancelled.set()
            self.queues.discard(queue)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    async def completions(self, request: Request, req: CompletionRequest) -> Any:
        self.check_model(req.model)
        sampling = self.sampling(req)
        self.check_max_tokens(req.max_tokens, "max_tokens")
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if not prompts:
            raise APIError(400, "prompt must not be an empty list", param="prompt")
        for p in prompts:
            self.check_size([p], "prompt")

        def prepare() -> tuple[list[list[int]], list[int]]:
            ids = [self.model.tokenizer.encode(p) for p in prompts]
            return ids, [self.max_tokens(len(i), req.max_tokens, 16, "max_tokens", "prompt") for i in ids]

        queue, cancelled = await self.run(prepare, sampling)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created, "model": self.model_id}
        if not req.stream:
            texts, reasons, pt, ct = await self.collect(request, queue, cancelled, len(prompts))
            choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": r}
                       for i, (t, r) in enumerate(zip(texts, reasons, strict=True))]
            return head | {"choices": choices, "usage": self.usage(pt, ct)}

        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        def chunk(index: int, text: str | None, finish: str | None) -> dict[str, Any]:
            choice = {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}
            return head | {"choices": [choice]} | ({"usage": None} if include_usage else {})

        def usage_chunk(pt: int, ct: int) -> dict[str, Any]:
            return head | {"choices": [], "usage": self.usage(pt, ct)}

        return EventStream(self.sse(queue, cancelled, [], chunk, usage_chunk if include_usage else None), cancelled)

    async def chat(self, request: Request, req: ChatRequest) -> Any:
        self.check_model(req.model)
        sampling = self.sampling(req)
        if not req.messages:
            raise APIError(400, "messages must not be empty", param="messages")
        if req.max_tokens is not None and req.max_completion_tokens is not None:
            raise APIError(400, "give max_tokens or max_completion_tokens, not both", param="max_tokens")
        requested, param = ((req.max_completion_tokens, "max_completion_tokens")
                            if req.max_completion_tokens is not None else (req.max_tokens, "max_tokens"))
        self.check_max_tokens(requested, param)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in req.messages]
        self.check_size([m["content"] for m in messages], "messages")

        def prepare() -> tuple[list[list[int]], list[int]]:
            ids = self.model.tokenizer.chat(messages)
            return [ids], [self.max_tokens(len(ids), requested, None, param, "messages")]

        queue, cancelled = await self.run(prepare, sampling)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "created": created, "model": self.model_id, "system_fingerprint": None}
        if not req.stream:
            texts, reasons, pt, ct = await self.collect(request, queue, cancelled, 1)
            choice = {"index": 0, "message": {"role": "assistant", "content": texts[0]}, "logprobs": None,
                      "finish_reason": reasons[0]}
            return {"object": "chat.completion"} | head | {"choices": [choice], "usage": self.usage(pt, ct)}

        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        head = {"object": "chat.completion.chunk"} | head

        def chunk(index: int, text: str | None, finish: str | None) -> dict[str, Any]:
            delta = {} if text is None else {"content": text}
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            return head | {"choices": [choice]} | ({"usage": None} if include_usage else {})

        def usage_chunk(pt: int, ct: int) -> dict[str, Any]:
            return head | {"choices": [], "usage": self.usage(pt, ct)}

        first = head | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                     "finish_reason": None}]} | ({"usage": None} if include_usage else {})
        return EventStream(self.sse(queue, cancelled, [first], chunk, usage_chunk if include_usage else None),
                           cancelled)

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "llaf",
                "context_length": self.model.params.context}


async def _disconnection(request: Request, queue: asyncio.Queue[tuple[Any, ...]]) -> None:
    """Put ("gone",) on `queue` when the client of `request` disconnects."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    queue.put_nowait(("gone",))


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def _event(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


class EventStream(StreamingResponse):
    """Server-sent events that cancel their job however the response ends
    (a client that disconnects makes the next write fail)."""

    def __init__(self, events: AsyncIterator[str], cancelled: threading.Event) -> None:
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.cancelled = cancelled

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancelled.set()


def model_name(name: str) -> str:
    """The API name of a model file: its name without .gguf or .safetensors."""
    for suffix in (".gguf", ".safetensors"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def page() -> str:
    return resources.files("llaf").joinpath("static/index.html").read_text(encoding="utf-8")


class HostCheck:
    """Refuses a request whose ``Host`` header is not one of `allowed`
    (exact names, ``*.example.com`` patterns, ``*`` for any). Without it, a
    web page on evil.example whose DNS then answers 127.0.0.1 (DNS
    rebinding) can call a server on loopback from the user's browser.
    Starlette's TrustedHostMiddleware does the same check but refuses in
    plain text, and API clients expect OpenAI's error body."""

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = [h.lower() for h in allowed]

    def allows(self, value: str | None) -> bool:
        try:  # urlsplit takes the port off and the brackets off an IPv6 address
            host = urlsplit(f"//{value}").hostname if value else None
        except ValueError:
            return False
        if not host:
            return False
        return any(p == "*" or host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in self.allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            value = Headers(scope=scope).get("host")
            if not self.allows(value):
                error = APIError(400, f"the Host header {value!r} is not a name of this server (llaf serve "
                                      f"--allowed-hosts)", code="invalid_host")
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuses a request body over `max_body` bytes: at once if its
    Content-Length says so, else when the bytes read pass the limit (a
    chunked body), before the rest is read or parsed. Recent FastAPI's own
    max_body_size does the same, but answers in plain text whatever the
    error handlers say."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await _body_too_large(self.max_body).response()(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    # Raised inside the route's reading of the body: FastAPI
                    # passes HTTPExceptions on to the handler below.
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, counted, send)


def _body_too_large(max_body: int) -> APIError:
    return APIError(413, f"the request body is larger than {max_body} bytes (llaf serve --max-body)")


def create_app(model: Model, model_id: str | None = None, max_body: int = DEFAULT_MAX_BODY,
               allowed_hosts: Sequence[str] | None = None,
               shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE) -> FastAPI:
    """The FastAPI application serving `model`: request bodies up to
    `max_body` bytes, ``Host`` headers among `allowed_hosts` (None: any)."""
    server = Server(model, model_id, max_body, shutdown_grace)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.loop = asyncio.get_running_loop()
        yield
        server.worker.close()
        server.tokenizing.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="llaf", description="An OpenAI-compatible server on a Futhark engine",
                  version="0.1.0", lifespan=lifespan)
    app.state.server = server
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    app.add_middleware(BodyLimit, max_body=max_body)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
        if exc.status_code == 413:  # from BodyLimit
            return _body_too_large(server.max_body).response()
        if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's "There was an error parsing the body"
            e = exc.__cause__
            message = f"the request body is not valid UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        return APIError(exc.status_code, message, code="not_found" if exc.status_code == 404 else None).response()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page())

    @app.get("/health")
    async def health() -> dict[str, Any]:
        worker = server.worker
        return {"status": "ok", "model": server.model_id, "pending": worker.pending, "served": worker.served,
                "cancelled": worker.cancelled}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [server.model_card()]}

    @app.get("/v1/models/{model:path}")
    async def model_info(model: str) -> dict[str, Any]:
        server.check_model(model)
        return server.model_card()

    @app.post("/v1/completions")
    async def completions(request: Request, body: CompletionRequest) -> Any:
        return await server.completions(request, body)

    @app.post("/v1/chat/completions")
    async def chat(request: Request, body: ChatRequest) -> Any:
        return await server.chat(request, body)

    return app


def _check_address(host: str, port: int) -> bool:
    """Refuse an address that cannot be listened on before the model loads;
    whether it is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise LlafError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            raise LlafError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def default_allowed_hosts(host: str, loopback: bool) -> list[str] | None:
    """The Host headers a server listening on `host` answers to when not
    told: on loopback, localhost names only (DNS rebinding cannot forge
    them); elsewhere any (None), as the address is meant to be reached."""
    return [*LOOPBACK_HOSTS, host.lower()] if loopback else None


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline for request headers.

    uvicorn times out idle keep-alive connections, but not a client that
    sends part of its headers and then waits: it would hold its connection
    forever (slowloris). The deadline runs from a connection's start, and on
    a kept-alive connection from the first byte of the next request, until
    uvicorn has the request's headers; then the connection is closed."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._start_deadline()

        def data_received(self, data: bytes) -> None:
            if self.header_deadline is None and (self.cycle is None or self.cycle.response_complete):
                self._start_deadline()  # the first bytes of the next request
            super().data_received(data)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers have arrived
                self._stop_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_deadline()
            super().connection_lost(exc)

        def _start_deadline(self) -> None:
            self._stop_deadline()
            self.header_deadline = self.loop.call_later(seconds, self._headers_too_late)

        def _stop_deadline(self) -> None:
            if self.header_deadline is not None:
                self.header_deadline.cancel()
                self.header_deadline = None

        def _headers_too_late(self) -> None:
            self.header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return Protocol


def _uvicorn_server(config: uvicorn.Config, server: Server) -> uvicorn.Server:
    """uvicorn's server, telling `server` when Ctrl-C or SIGTERM comes."""
    import uvicorn

    class Uvicorn(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if server.loop is not None:  # a signal handler: onto the event loop
                server.loop.call_soon_threadsafe(server.begin_shutdown)

    return Uvicorn(config)


def serve(model: str | Path | None = None, backend: str | None = None, context: int | None = None,
          host: str = "127.0.0.1", port: int = 8000, model_id: str | None = None,
          storage: str | None = None, max_body: int = DEFAULT_MAX_BODY, allowed_hosts: Sequence[str] | None = None,
          header_timeout: float = DEFAULT_HEADER_TIMEOUT, shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE) -> None:
    """Load the model, then serve it until interrupted. `allowed_hosts`:
    the names the ``Host`` header may give (``*``: any); by default
    localhost names on a loopback address, any elsewhere."""
    import uvicorn

    from .generation import DEFAULT_CONTEXT, load

    if not 0 <= port <= 65535:
        raise LlafError(f"the port must be between 0 and 65535, got {port}")
    if max_body < 1:
        raise LlafError(f"the body size limit must be positive, got {max_body}")
    for name, value in (("header timeout", header_timeout), ("shutdown grace", shutdown_grace)):
        if not value >= 0:
            raise LlafError(f"the {name} must be a number of seconds >= 0, got {value}")
    hosts = list(allowed_hosts) if allowed_hosts is not None else None
    if hosts == []:
        raise LlafError("--allowed-hosts names no host: give names, or * for any")
    for pattern in hosts or ():
        if not pattern or "*" in pattern[1:] or (pattern.startswith("*") and pattern != "*"
                                                 and not pattern.startswith("*.")):
            raise LlafError(f"an allowed host is a name, *.domain or *, got {pattern!r}")
    loopback = _check_address(host, port)
    if hosts is None:
        hosts = default_allowed_hosts(host, loopback)
    loaded = load(model, backend=backend, context=DEFAULT_CONTEXT if context is None else context, storage=storage)
    app = create_app(loaded, model_id, max_body=max_body, allowed_hosts=hosts, shutdown_grace=shutdown_grace)
    print(f"llaf: serving {app.state.server.model_id} on http://{host}:{port}/ "
          f"(backend {loaded.params.engine.backend}, storage {loaded.params.storage}, "
          f"context {loaded.params.context})", flush=True)
    # Our own shutdown ends every request within shutdown_grace; uvicorn's
    # (which cancels the tasks, a traceback each) is only a backstop for
    # clients that stop reading.
    config = uvicorn.Config(app, host=host, port=port, log_level="info", http=header_timeout_protocol(header_timeout),
                            timeout_graceful_shutdown=int(shutdown_grace) + 5)
    _uvicorn_server(config, app.state.server).run()
