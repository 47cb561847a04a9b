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
route, 413 for a body over ``--max-body``. A request naming another model
is answered by the served one, whose name the response gives (as llama.cpp's
server does); with ``strict_model`` (``--strict-model``) it is a 404
``model_not_found``.

While the model loads (`serve` listens first, then loads), /health answers
503 with ``"status": "loading"`` and every other route 503 too.

On Ctrl-C or SIGTERM (`Server.begin_shutdown`), requests still generating
get ``--shutdown-grace`` seconds, then end with an error (a stream: an
error event, then ``[DONE]``); new ones get a 503.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..checks import ArgumentError
from ..constraints import ANY_OBJECT, check_schema, vocabulary
from ..errors import LlafError, internal_error
from ..generation import Model, fit_chat
from ..logprobs import MAX_TOP_LOGPROBS, TokenLogprob
from ..model import embed
from ..sampling import SamplingError, SamplingParams
from .errors import APIError, loading, shutting_down, validation_error
from .events import Channel, EventStream, Failed, Usage, collect, sse
from .guards import BodyLimit, HostCheck, body_too_large
from .limits import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY,
    DEFAULT_SHUTDOWN_GRACE,
    MAX_CHOICES,
    MAX_EMBEDDING_INPUTS,
    MAX_STOP_STRINGS,
)
from .logprobs import MAX_COMPLETION_LOGPROBS, CompletionLogprobs, chat_logprobs
from .metrics import CONTENT_TYPE, CountRequests, Metrics
from .scheduler import Job, Scheduler
from .schemas import (
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    EmbeddingRequest,
    Options,
    ResponseFormat,
    TokenizeRequest,
)


class Server:
    """The state behind the routes: the model, its name and the scheduler.
    Made before the model has loaded (`model` None) it answers 503 until
    `ready` is called."""

    def __init__(self, model: Model | None, model_id: str | None = None, max_body: int = DEFAULT_MAX_BODY,
                 shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE, max_batch: int = DEFAULT_MAX_BATCH,
                 strict_model: bool = False, replicas: Callable[[], int] | None = None) -> None:
        self.replicas = replicas  # the live replicas' count on Ray Serve (llaf/server/replicas.py); None: alone
        self.model_id = model_id or ""
        self.created = int(time.time())
        self.max_body = max_body
        self.shutdown_grace = shutdown_grace
        self.metrics = Metrics()
        self.max_batch = max_batch
        self.strict_model = strict_model
        self._model: Model | None = None
        self._scheduler: Scheduler | None = None
        if model is not None:
            self.ready(model)
        # Tokenizing a long text takes a while (a megabyte: about a second):
        # off the engine's thread, so that generation goes on meanwhile.
        # tokenizers and tiktoken may be called from several threads.
        self.tokenizing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="llaf-tokenize")
        self.under_way: set[Channel] = set()  # the requests whose responses have not ended
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining = False  # shutting down: no new requests

    def ready(self, model: Model) -> None:
        """The model has loaded: serve it. Called from the loading thread:
        the scheduler is in place before `loaded` says so (its engine thread
        starts with the first request)."""
        self.model_id = self.model_id or model_name(model.name)
        self._scheduler = s = Scheduler(model, self.max_batch, metrics=self.metrics)
        self.metrics.watch(lambda: s.pending, lambda: s.n_running, lambda: s.n_waiting)
        self._model = model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> Model:
        """The model; while it loads, a 503 for the request that asks."""
        if self._model is None:
            raise loading()
        return self._model

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            raise loading()
        return self._scheduler

    # ----- checks

    def check_model(self, name: str | None, strict: bool) -> None:
        """`name` must be the served model's where `strict`; otherwise the
        served model answers whatever a request names."""
        if not self.loaded:  # a 503 before any other answer
            raise loading()
        if strict and name is not None and name != self.model_id:
            raise APIError(404, f"the model '{name}' does not exist; this server has '{self.model_id}'",
                           param="model", code="model_not_found")

    @staticmethod
    def choices(req: Options) -> int:
        """`n`, the choices per prompt."""
        n = 1 if req.n is None else req.n
        if not 1 <= n <= MAX_CHOICES:
            raise APIError(400, f"n must be in [1, {MAX_CHOICES}], got {n}", param="n")
        return n

    def sampling(self, req: Options) -> SamplingParams:
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if len(stop) > MAX_STOP_STRINGS:
            raise APIError(400, f"stop may hold at most {MAX_STOP_STRINGS} strings, got {len(stop)}", param="stop")
        schema = json_schema(req.response_format)
        try:
            return SamplingParams(
                temperature=1.0 if req.temperature is None else req.temperature,
                top_k=req.top_k or 0,
                top_p=1.0 if req.top_p is None else req.top_p,
                repetition_penalty=1.0 if req.repetition_penalty is None else req.repetition_penalty,
                seed=req.seed, stop=tuple(stop), min_p=req.min_p or 0.0, presence_penalty=req.presence_penalty or 0.0,
                frequency_penalty=req.frequency_penalty or 0.0, json_schema=schema)
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

    def fit(self, messages: list[dict[str, str]], requested: int | None) -> tuple[list[list[int]], list[int]]:
        """A conversation without as many of its oldest turns as it takes to
        leave `requested` tokens for the reply (at least one; the system
        message stays), as `Model.chat(..., truncate=True)`."""
        context = self.model.params.context
        try:
            ids, _, max_tokens = fit_chat(self.model.tokenizer, messages, requested or 1, context)
        except LlafError as e:  # the last turn alone fills the context
            raise APIError(400, str(e), param="messages", code="context_length_exceeded") from None
        return [ids], [max_tokens if requested is not None else context - len(ids)]

    # ----- generation

    def check_ids(self, given: Any, param: str) -> None:
        """Token ids given for a prompt (one list, or a list of lists) must be in the vocabulary."""
        vocab = self.model.params.vocab
        single = is_ids(given)
        for i, ids in enumerate([given] if single else given):
            bad = [t for t in ids if isinstance(t, int) and t >= vocab]
            if bad:
                where = param if single else f"{param}[{i}]"
                raise APIError(400, f"{where}: token id {bad[0]} is not in the vocabulary (0 to {vocab - 1})",
                               param=where)

    async def run(self, prepare: Callable[[], tuple[list[list[int]], list[int]]],
                  sampling: SamplingParams, n: int = 1, logprobs: int | None = None) -> Channel:
        """Tokenize (on a tokenizing thread) and queue the generations;
        refusals raise APIError before any response is sent."""
        if self.draining:
            raise shutting_down()
        loop = asyncio.get_running_loop()
        try:
            ids, max_tokens = await loop.run_in_executor(self.tokenizing, prepare)
            if sampling.json_schema is not None:  # the vocabulary's first reading (a second) off the event loop
                await loop.run_in_executor(self.tokenizing, vocabulary, self.model.tokenizer)
        except LlafError as e:
            raise APIError(400, str(e)) from None
        if self.draining:
            raise shutting_down()
        channel = Channel(loop, on_close=self.under_way.discard)
        self.under_way.add(channel)
        self.scheduler.submit(Job(ids, max_tokens, sampling, channel, n=n, logprobs=logprobs))
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
        if self._scheduler is not None:
            self._scheduler.close()
        for channel in list(self.under_way):
            channel.queue.put_nowait(Failed(shutting_down()))

    async def completions(self, request: Request, req: CompletionRequest) -> Any:
        self.check_model(req.model, self.strict_model)
        sampling, n = self.sampling(req), self.choices(req)
        self.check_max_tokens(req.max_tokens, "max_tokens")
        if req.logprobs is not None and not 0 <= req.logprobs <= MAX_COMPLETION_LOGPROBS:
            raise APIError(400, f"logprobs must be in [0, {MAX_COMPLETION_LOGPROBS}], got {req.logprobs}",
                           param="logprobs")
        prompts = prompt_list(req.prompt)
        if not prompts:
            raise APIError(400, "prompt must not be an empty list", param="prompt")
        for p in prompts:
            if isinstance(p, str):
                self.check_size([p], "prompt")
            elif not p:
                raise APIError(400, "the prompt is empty", param="prompt")
        self.check_ids(req.prompt, "prompt")

        def prepare() -> tuple[list[list[int]], list[int]]:
            ids = [self.model.tokenizer.encode(p) if isinstance(p, str) else list(p) for p in prompts]
            return ids, [self.max_tokens(len(i), req.max_tokens, 16, "max_tokens", "prompt") for i in ids]

        channel = await self.run(prepare, sampling, n, req.logprobs)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created, "model": self.model_id}
        shaped = [CompletionLogprobs(self.model.tokenizer) for _ in range(len(prompts) * n)]

        def logprobs(index: int, entries: Sequence[TokenLogprob]) -> dict[str, Any] | None:
            return None if req.logprobs is None else shaped[index](entries)

        if not req.stream:
            out = await collect(request, channel, len(prompts) * n)
            choices = [{"index": i, "text": t, "logprobs": logprobs(i, lp), "finish_reason": r}
                       for i, (t, r, lp) in enumerate(zip(out.texts, out.reasons, out.logprobs, strict=True))]
            return head | {"choices": choices, "usage": out.usage.body()}

        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        def chunk(index: int, text: str | None, finish: str | None,
                  entries: Sequence[TokenLogprob]) -> dict[str, Any]:
            choice = {"index": index, "text": text or "", "logprobs": logprobs(index, entries),
                      "finish_reason": finish}
            return head | {"choices": [choice]} | ({"usage": None} if include_usage else {})

        def usage_chunk(usage: Usage) -> dict[str, Any]:
            return head | {"choices": [], "usage": usage.body()}

        return EventStream(sse(channel, [], chunk, usage_chunk if include_usage else None), channel)

    async def chat(self, request: Request, req: ChatRequest) -> Any:
        self.check_model(req.model, self.strict_model)
        sampling, n = self.sampling(req), self.choices(req)
        if req.top_logprobs is not None and not req.logprobs:
            raise APIError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
        if req.top_logprobs is not None and not 0 <= req.top_logprobs <= MAX_TOP_LOGPROBS:
            raise APIError(400, f"top_logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {req.top_logprobs}",
                           param="top_logprobs")
        top_logprobs = (req.top_logprobs or 0) if req.logprobs else None
        if not req.messages:
            raise APIError(400, "messages must not be empty", param="messages")
        if req.max_tokens is not None and req.max_completion_tokens is not None:
            raise APIError(400, "give max_tokens or max_completion_tokens, not both", param="max_tokens")
        requested, param = ((req.max_completion_tokens, "max_completion_tokens")
                            if req.max_completion_tokens is not None else (req.max_tokens, "max_tokens"))
        self.check_max_tokens(requested, param)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in req.messages]
        if not req.truncate:  # (with truncate, --max-body bounds what is tokenized)
            self.check_size([m["content"] for m in messages], "messages")

        def prepare() -> tuple[list[list[int]], list[int]]:
            if req.truncate:
                return self.fit(messages, requested)
            ids = self.model.tokenizer.chat(messages)
            return [ids], [self.max_tokens(len(ids), requested, None, param, "messages")]

        channel = await self.run(prepare, sampling, n, top_logprobs)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "created": created, "model": self.model_id, "system_fingerprint": None}

        def logprobs(entries: Sequence[TokenLogprob]) -> dict[str, Any] | None:
            return None if top_logprobs is None else chat_logprobs(self.model.tokenizer, entries)

        if not req.stream:
            out = await collect(request, channel, n)
            choices = [{"index": i, "message": {"role": "assistant", "content": t}, "logprobs": logprobs(lp),
                        "finish_reason": r}
                       for i, (t, r, lp) in enumerate(zip(out.texts, out.reasons, out.logprobs, strict=True))]
            return {"object": "chat.completion"} | head | {"choices": choices,
                                                          "usage": out.usage.body()}

        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        head = {"object": "chat.completion.chunk"} | head

        def chunk(index: int, text: str | None, finish: str | None,
                  entries: Sequence[TokenLogprob]) -> dict[str, Any]:
            delta = {} if text is None else {"content": text}
            choice = {"index": index, "delta": delta, "logprobs": logprobs(entries) if entries else None,
                      "finish_reason": finish}
            return head | {"choices": [choice]} | ({"usage": None} if include_usage else {})

        def usage_chunk(usage: Usage) -> dict[str, Any]:
            return head | {"choices": [], "usage": usage.body()}

        first = [head | {"choices": [{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                      "finish_reason": None}]} | ({"usage": None} if include_usage else {})
                 for i in range(n)]
        return EventStream(sse(channel, first, chunk, usage_chunk if include_usage else None), channel)

    # ----- llama.cpp's endpoints and embeddings

    def tokenize(self, req: TokenizeRequest) -> dict[str, Any]:
        self.check_size([req.content], "content")
        ids = self.model.tokenizer.encode(req.content)
        if not req.with_pieces:
            return {"tokens": ids}
        return {"tokens": [{"id": t, "piece": self.model.tokenizer.decode([t])} for t in ids]}

    def detokenize(self, req: DetokenizeRequest) -> dict[str, Any]:
        self.check_ids(req.tokens, "tokens")
        return {"content": self.model.tokenizer.decode(req.tokens)}

    def props(self) -> dict[str, Any]:
        params = self.model.params
        return {"model": self.model_id, "model_path": self.model.name, "architecture": params.architecture,
                "context_length": params.context, "vocab_size": params.vocab, "storage": params.storage,
                "backend": params.engine.backend, "total_slots": self.scheduler.max_batch}

    async def embeddings(self, req: EmbeddingRequest) -> dict[str, Any]:
        self.check_model(req.model, self.strict_model)
        if self.draining:
            raise shutting_down()
        inputs = prompt_list(req.input)
        if not inputs:
            raise APIError(400, "input must not be an empty list", param="input")
        if len(inputs) > MAX_EMBEDDING_INPUTS:
            raise APIError(400, f"input may hold at most {MAX_EMBEDDING_INPUTS} texts, got {len(inputs)}",
                           param="input")
        for t in inputs:
            if isinstance(t, str):
                self.check_size([t], "input")
        self.check_ids(req.input, "input")
        loop = asyncio.get_running_loop()

        def prepare() -> list[list[int]]:
            ids = [self.model.tokenizer.encode(p) if isinstance(p, str) else list(p) for p in inputs]
            context = self.model.params.context
            for i in ids:
                if not i:
                    raise APIError(400, "the input is empty", param="input")
                if len(i) > context:
                    raise APIError(400, f"the input has {_tokens(len(i))}, more than the context length {context}",
                                   param="input", code="context_length_exceeded")
            return ids

        ids = await loop.run_in_executor(self.tokenizing, prepare)
        # A batch of inputs at a time on the engine thread, so that generation goes on in between.
        size = self.scheduler.max_batch
        vectors: list[np.ndarray] = []
        for i in range(0, len(ids), size):
            group = ids[i:i + size]
            try:
                work = self.scheduler.call(lambda g=group: embed(self.model.params, g))  # type: ignore[misc]
                vectors.append(await asyncio.wrap_future(work))
            except RuntimeError:  # the engine thread has stopped: shutting down
                raise shutting_down() from None
            except (LlafError, MemoryError) as e:
                raise APIError(500, f"embedding failed: {e}", type="server_error") from None
        data = [{"object": "embedding", "index": i, "embedding": encode_vector(v, req.encoding_format)}
                for i, v in enumerate(np.concatenate(vectors))]
        n_tokens = sum(len(i) for i in ids)
        return {"object": "list", "data": data, "model": self.model_id,
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "llaf",
                "context_length": self.model.params.context}


def is_ids(prompt: Any) -> bool:
    """Whether `prompt` is one prompt's token ids (rather than a list of prompts)."""
    return isinstance(prompt, list) and bool(prompt) and isinstance(prompt[0], int)


def prompt_list(prompt: str | list[str] | list[int] | list[list[int]]) -> list[str | list[int]]:
    """One prompt or several, each a text or token ids, as a list of prompts."""
    if isinstance(prompt, str) or is_ids(prompt):
        return [prompt]  # type: ignore[list-item]
    return list(prompt)  # type: ignore[arg-type]


def encode_vector(v: np.ndarray, encoding_format: str) -> list[float] | str:
    """An embedding as OpenAI sends it: a list of numbers, or base64 of its little-endian float32 bytes."""
    if encoding_format == "base64":
        return base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in v]


def json_schema(response_format: ResponseFormat | None) -> dict[str, Any] | None:
    """The JSON schema `response_format` asks the output to follow (json_object:
    any JSON object), or None for any text; a bad schema is a 400."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return ANY_OBJECT
    if response_format.json_schema is None:
        raise APIError(400, "response_format of type json_schema needs its json_schema", param="response_format")
    schema = response_format.json_schema.schema_
    if schema is None:
        return ANY_OBJECT
    try:
        return check_schema("response_format.json_schema.schema", schema)
    except ArgumentError as e:
        raise APIError(400, str(e), param="response_format") from None


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


def create_app(model: Model | None, model_id: str | None = None, max_body: int = DEFAULT_MAX_BODY,
               allowed_hosts: Sequence[str] | None = None,
               shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE, max_batch: int = DEFAULT_MAX_BATCH,
               strict_model: bool = False, replicas: Callable[[], int] | None = None) -> FastAPI:
    """The FastAPI application serving `model` (None: still loading, until
    ``app.state.server.ready(model)``): request bodies up to `max_body`
    bytes, ``Host`` headers among `allowed_hosts` (None: any), up to
    `max_batch` sequences decoded together; with `strict_model`, requests
    naming another model get a 404. `replicas`: how many replicas of this
    app are live (a blocking call), when it is one of several on Ray Serve."""
    server = Server(model, model_id, max_body, shutdown_grace, max_batch, strict_model, replicas)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.loop = asyncio.get_running_loop()
        yield
        if server.loaded:
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
    routes: set[str] = set()  # filled below, once the routes are known
    app.add_middleware(CountRequests, metrics=server.metrics, routes=lambda: routes)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:  # a bug, never the client's fault
        return APIError(500, internal_error(exc), type="server_error").response()

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

    # (HEAD too: load balancers and uptime checks probe with it)
    @app.api_route("/health", methods=["GET", "HEAD"], response_model=None)
    async def health() -> dict[str, Any] | JSONResponse:
        if not server.loaded:
            return JSONResponse({"status": "loading", "model": server.model_id or None}, status_code=503)
        # pending: requests queued or generating; running and waiting: their
        # sequences in the batch and in line for it; on Ray Serve, those of the
        # replica that answers. replicas: a call to Ray's controller, off the loop.
        s = server.scheduler
        replicas = 1 if server.replicas is None else await asyncio.to_thread(server.replicas)
        return {"status": "ok", "model": server.model_id, "pending": s.pending, "served": s.served,
                "cancelled": s.cancelled, "running": s.n_running, "waiting": s.n_waiting, "max_batch": s.max_batch,
                "largest_batch": s.largest_batch, "replicas": replicas}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [server.model_card()]}

    @app.get("/v1/models/{model:path}")
    async def model_info(model: str) -> dict[str, Any]:
        # Asked whether a model is here, the answer is exact.
        server.check_model(model, strict=True)
        return server.model_card()

    @app.post("/v1/completions")
    async def completions(request: Request, body: CompletionRequest) -> Any:
        return await server.completions(request, body)

    @app.post("/v1/chat/completions")
    async def chat(request: Request, body: ChatRequest) -> Any:
        return await server.chat(request, body)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest) -> Any:
        return await server.embeddings(body)

    @app.post("/tokenize")
    async def tokenize(body: TokenizeRequest) -> Any:
        return await asyncio.get_running_loop().run_in_executor(server.tokenizing, server.tokenize, body)

    @app.post("/detokenize")
    async def detokenize(body: DetokenizeRequest) -> Any:
        return await asyncio.get_running_loop().run_in_executor(server.tokenizing, server.detokenize, body)

    @app.get("/props")
    async def props() -> dict[str, Any]:
        return server.props()

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(server.metrics.exposition(), media_type=CONTENT_TYPE)

    routes.update(r.path for r in app.routes if "{" not in getattr(r, "path", "{"))
    return app
