"""The FastAPI application: its routes, the checks of a request before it
reaches the engine, and OpenAI's response bodies built from a generation's
events (llaf/server/events.py).

A request is checked (model, sampling options, sizes), tokenized on a
tokenizing thread (a long text takes a while, and the engine's thread goes
on meanwhile), then handed to the scheduler (llaf/server/scheduler.py) as a
`Job`; its response reads the job's `Channel`. Bad requests get OpenAI's
error body (llaf/server/errors.py): 400 for malformed JSON or UTF-8, text
that is not valid Unicode, wrong types and out-of-range values (a prompt
longer than the context: code ``context_length_exceeded``, found from its
size before it is tokenized where it is far too long), 404 for an unknown
model (``model_not_found``) or route, 413 for a body over ``--max-body``.

On Ctrl-C or SIGTERM (`Server.begin_shutdown`), requests still generating
get ``--shutdown-grace`` seconds, then end with an error (a stream: an
error event, then ``[DONE]``); new ones get a 503.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import LlafError
from ..generation import Model
from ..sampling import SamplingError, SamplingParams
from .errors import APIError, shutting_down, validation_error
from .events import Channel, EventStream, Failed, collect, sse
from .guards import BodyLimit, HostCheck, body_too_large
from .limits import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY, DEFAULT_SHUTDOWN_GRACE, MAX_STOP_STRINGS
from .scheduler import Job, Scheduler
from .schemas import ChatRequest, CompletionRequest, Options


class Server:
    """The state behind the routes: the model, its name and the scheduler."""

    def __init__(self, model: Model, model_id: str | None = None, max_body: int = DEFAULT_MAX_BODY,
                 shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.model = model
        self.model_id = model_id or model_name(model.name)
        self.created = int(time.time())
        self.max_body = max_body
        self.shutdown_grace = shutdown_grace
        self.scheduler = Scheduler(model, max_batch)
        # Tokenizing a long text takes a while (a megabyte: about a second):
        # off the engine's thread, so that generation goes on meanwhile.
        # tokenizers and tiktoken may be called from several threads.
        self.tokenizing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="llaf-tokenize")
        self.under_way: set[Channel] = set()  # the requests whose responses have not ended
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining = False  # shutting down: no new requests

    # ----- checks

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.model_id:
            raise APIError(404, f"the model '{name}' does not exist; this server has '{self.model_id}'",
                           param="model", code="model_not_found")

    def sampling(self, req: Options) -> SamplingParams:
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

    async def run(self, prepare: Callable[[], tuple[list[list[int]], list[int]]],
                  sampling: SamplingParams) -> Channel:
        """Tokenize (on a tokenizing thread) and queue the generations;
        refusals raise APIError before any response is sent."""
        if self.draining:
            raise shutting_down()
        loop = asyncio.get_running_loop()
        try:
            ids, max_tokens = await loop.run_in_executor(self.tokenizing, prepare)
        except LlafError as e:
            raise APIError(400, str(e)) from None
        if self.draining:
            raise shutting_down()
        channel = Channel(loop, on_close=self.under_way.discard)
        self.under_way.add(channel)
        self.scheduler.submit(Job(ids, max_tokens, sampling, channel))
        return channel

    def begin_shutdown(self) -> None:
        """Ctrl-C or SIGTERM: refuse new requests, and after the grace period
        end those still under way with an error event, so that their
        responses end properly instead of being cancelled by uvicorn."""
        if self.draining:
            return
        self.draining = True
        asyncio.get_running_loop().call_later(self.shutdown_grace, self.cut_short)

    def cut_short(self) -> None:
        self.scheduler.close()
        for channel in list(self.under_way):
            channel.queue.put_nowait(Failed(shutting_down()))

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

        channel = await self.run(prepare, sampling)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created, "model": self.model_id}
        if not req.stream:
            out = await collect(request, channel, len(prompts))
            choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": r}
                       for i, (t, r) in enumerate(zip(out.texts, out.reasons, strict=True))]
            return head | {"choices": choices, "usage": self.usage(out.prompt_tokens, out.completion_tokens)}

        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        def chunk(index: int, text: str | None, finish: str | None) -> dict[str, Any]:
            choice = {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}
            return head | {"choices": [choice]} | ({"usage": None} if include_usage else {})

        def usage_chunk(pt: int, ct: int) -> dict[str, Any]:
            return head | {"choices": [], "usage": self.usage(pt, ct)}

        return EventStream(sse(channel, [], chunk, usage_chunk if include_usage else None), channel)

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

        channel = await self.run(prepare, sampling)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "created": created, "model": self.model_id, "system_fingerprint": None}
        if not req.stream:
            out = await collect(request, channel, 1)
            choice = {"index": 0, "message": {"role": "assistant", "content": out.texts[0]}, "logprobs": None,
                      "finish_reason": out.reasons[0]}
            return {"object": "chat.completion"} | head | {"choices": [choice],
                                                          "usage": self.usage(out.prompt_tokens, out.completion_tokens)}

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
        return EventStream(sse(channel, [first], chunk, usage_chunk if include_usage else None), channel)

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "llaf",
                "context_length": self.model.params.context}


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def model_name(name: str) -> str:
    """The API name of a model file: its name without .gguf or .safetensors."""
    for suffix in (".gguf", ".safetensors"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def page() -> str:
    return resources.files("llaf").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(model: Model, model_id: str | None = None, max_body: int = DEFAULT_MAX_BODY,
               allowed_hosts: Sequence[str] | None = None,
               shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE, max_batch: int = DEFAULT_MAX_BATCH) -> FastAPI:
    """The FastAPI application serving `model`: request bodies up to
    `max_body` bytes, ``Host`` headers among `allowed_hosts` (None: any),
    up to `max_batch` sequences decoded together."""
    server = Server(model, model_id, max_body, shutdown_grace, max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.loop = asyncio.get_running_loop()
        yield
        server.scheduler.close()
        server.tokenizing.shutdown(wait=False, cancel_futures=True)

    # FastAPIOffline: /docs with Swagger UI's files served from the
    # fastapi-offline package instead of a CDN, so that it works on a machine
    # with no internet. No /redoc: ReDoc still loads its logo from its CDN.
    app = FastAPIOffline(title="llaf", description="An OpenAI-compatible server on a Futhark engine",
                         version="0.1.0", lifespan=lifespan, redoc_url=None)
    app.state.server = server
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    app.add_middleware(BodyLimit, max_body=max_body)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
        if exc.status_code == 413:  # from BodyLimit
            return body_too_large(server.max_body).response()
        if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's "There was an error parsing the body"
            e = exc.__cause__
            message = f"the request body is not valid UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        return APIError(exc.status_code, message, code="not_found" if exc.status_code == 404 else None).response()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page())

    # The page's scripts (llaf/static/markdown.js, built from page/).
    app.mount("/static", StaticFiles(packages=[("llaf", "static")]), name="static")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        # pending: requests queued or generating; running and waiting: their
        # sequences in the batch and in line for it.
        s = server.scheduler
        return {"status": "ok", "model": server.model_id, "pending": s.pending, "served": s.served,
                "cancelled": s.cancelled, "running": s.n_running, "waiting": s.n_waiting, "max_batch": s.max_batch,
                "largest_batch": s.largest_batch}

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
