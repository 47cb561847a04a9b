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
worker thread runs every tokenization and generation, a request at a time
in arrival order; the event loop meanwhile keeps accepting requests and
streaming. A client that goes away ends its generation at the next token.

Bad requests get OpenAI's error body, ``{"error": {"message", "type",
"param", "code"}}``: 400 for malformed JSON, wrong types and out-of-range
values (a prompt longer than the context: code ``context_length_exceeded``),
404 for an unknown model (``model_not_found``) or route.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import LlafError
from .generation import Model, TextStream
from .sampling import SamplingError, SamplingParams

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


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class StreamOptions(_Strict):
    include_usage: bool = False


class _Options(_Strict):
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class CompletionRequest(_Options):
    prompt: str | list[str]


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

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

    async def call(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

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
    # pydantic puts the union member's name in the location: leave it out.
    param = _error_param([p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "list")))])
    return APIError(400, f"{param}: {err.get('msg', 'invalid value')}", param=param)


class Server:
    """The state behind the routes: the model, its name and the worker."""

    def __init__(self, model: Model, model_id: str | None = None) -> None:
        self.model = model
        self.model_id = model_id or model_name(model.name)
        self.created = int(time.time())
        self.worker = Worker(model)

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

    async def run(self, prepare: Callable[[], tuple[list[list[int]], list[int]]],
                  sampling: SamplingParams) -> tuple[asyncio.Queue[tuple[Any, ...]], threading.Event]:
        """Tokenize (in the worker) and start the generations; refusals raise
        APIError before any response is sent."""
        try:
            ids, max_tokens = await self.worker.call(prepare)
        except LlafError as e:
            raise APIError(400, str(e)) from None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        cancelled = threading.Event()

        def put(event: tuple[Any, ...]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        self.worker.start(Job(ids, max_tokens, sampling, put, cancelled))
        return queue, cancelled

    async def collect(self, request: Request, queue: asyncio.Queue[tuple[Any, ...]],
                      cancelled: threading.Event, n: int) -> tuple[list[str], list[str], int, int]:
        """All events of a job: texts and finish reasons per choice, token counts.
        A client that disconnects while it waits cancels the job."""
        texts = [""] * n
        reasons = [""] * n
        prompt_tokens = completion_tokens = 0
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=0.5)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        cancelled.set()
                        raise APIError(499, "the client closed the connection") from None
                    continue
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
            cancelled.set()

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


def create_app(model: Model, model_id: str | None = None) -> FastAPI:
    """The FastAPI application serving `model`."""
    server = Server(model, model_id)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        server.worker.close()

    app = FastAPI(title="llaf", description="An OpenAI-compatible server on a Futhark engine",
                  version="0.1.0", lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
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


def _check_address(host: str, port: int) -> None:
    """Refuse an address that cannot be listened on before the model loads."""
    import socket

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


def serve(model: str | Path | None = None, backend: str | None = None, context: int | None = None,
          host: str = "127.0.0.1", port: int = 8000, model_id: str | None = None,
          storage: str | None = None) -> None:
    """Load the model, then serve it until interrupted."""
    import uvicorn

    from .generation import DEFAULT_CONTEXT, load

    if not 0 <= port <= 65535:
        raise LlafError(f"the port must be between 0 and 65535, got {port}")
    _check_address(host, port)
    loaded = load(model, backend=backend, context=DEFAULT_CONTEXT if context is None else context, storage=storage)
    app = create_app(loaded, model_id)
    print(f"llaf: serving {app.state.server.model_id} on http://{host}:{port}/ "
          f"(backend {loaded.params.engine.backend}, storage {loaded.params.storage}, "
          f"context {loaded.params.context})", flush=True)
    # On Ctrl-C or SIGTERM, requests still generating get 5 s to finish, then are cut short.
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
