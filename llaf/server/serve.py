"""`serve`: check the address, listen, load the model, serve until Ctrl-C.

The port opens before the model loads, so that /health can say "loading"
(503) instead of a client finding the port closed; the model loads on a
thread of its own once uvicorn listens, and a failure to load stops the
server with that error.

The key/value memory is bounded: the scheduler's cache holds at most
``--max-batch`` sequences of up to ``--context`` positions, and `serve`
checks that so much fits in memory before it serves.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from .. import checks
from ..errors import LlafError, cannot_listen
from ..model import cache_bytes, check_cache_fits
from .app import Server, create_app, model_name
from .guards import default_allowed_hosts, header_timeout_protocol
from .limits import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY, DEFAULT_SHUTDOWN_GRACE

if TYPE_CHECKING:
    import uvicorn


def _check_address(host: str, port: int) -> bool:
    """Refuse an address that cannot be listened on before the model loads;
    whether it is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise cannot_listen(host, port, e) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            raise cannot_listen(host, port, e) from None
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def _uvicorn_server(config: uvicorn.Config, server: Server, load: Callable[[], None],
                    failed: list[BaseException]) -> uvicorn.Server:
    """uvicorn's server, which once it listens runs `load` on a thread (its
    error goes to `failed` and stops the server) and tells `server` when
    Ctrl-C or SIGTERM comes."""
    import uvicorn

    class Uvicorn(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                threading.Thread(target=self.load, name="llaf-load", daemon=True).start()

        def load(self) -> None:
            try:
                load()
            except BaseException as e:  # LlafError, out of memory, a missing file: `serve` raises it
                failed.append(e)
                self.should_exit = True

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if server.loop is not None:  # a signal handler: onto the event loop
                server.loop.call_soon_threadsafe(server.begin_shutdown)

    return Uvicorn(config)


def serve(model: str | Path | None = None, backend: str | None = None, context: int | None = None,
          host: str = "127.0.0.1", port: int = 8000, model_id: str | None = None,
          storage: str | None = None, max_body: int = DEFAULT_MAX_BODY, allowed_hosts: Sequence[str] | None = None,
          header_timeout: float = DEFAULT_HEADER_TIMEOUT, shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
          max_batch: int = DEFAULT_MAX_BATCH, strict_model: bool = False, threads: int | None = None,
          replicas: int | None = None, ray_address: str | None = None, adapter: str | Path | None = None) -> None:
    """Listen, load the model, and serve it until interrupted. `allowed_hosts`:
    the names the ``Host`` header may give (``*``: any); by default
    localhost names on a loopback address, any elsewhere. `max_batch`:
    the sequences decoded together (the rest wait). `strict_model`: a
    request naming another model is a 404 (by default the served model
    answers it). `threads`: the multicore backend's worker threads.
    `replicas` or `ray_address`: that many engines (default 1) on Ray Serve,
    on a local Ray or the cluster at `ray_address` (llaf/server/replicas.py).
    `adapter`: LoRA adapters merged into the model (`llaf.load`)."""
    import uvicorn

    from ..backend import check_threads, resolve_backend
    from ..generation import DEFAULT_CONTEXT, load, model_source

    checks.port(port)
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise LlafError(f"the batch size (--max-batch) must be at least 1, got {max_batch}")
    if max_body < 1:
        raise LlafError(f"the body size limit must be positive, got {max_body}")
    for name, value in (("header timeout", header_timeout), ("shutdown grace", shutdown_grace)):
        if not 0 <= value < math.inf:
            raise LlafError(f"the {name} must be a finite number of seconds >= 0, got {value}")
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
    if replicas is not None or ray_address is not None:
        _serve_on_ray(model, backend, context, host, port, model_id, storage, max_body, hosts, shutdown_grace,
                      max_batch, 1 if replicas is None else replicas, ray_address, strict_model, threads, adapter)
        return
    # What can be checked at once is, before the port opens: the model's file
    # and the backend.
    source = model_source(model)
    check_threads(threads, resolve_backend(backend))
    app = create_app(None, model_id or model_name(Path(str(source)).name), max_body=max_body, allowed_hosts=hosts,
                     shutdown_grace=shutdown_grace, max_batch=max_batch, strict_model=strict_model)
    name = app.state.server.model_id

    def load_model() -> None:
        loaded = load(source, backend=backend, context=DEFAULT_CONTEXT if context is None else context,
                      storage=storage, threads=threads, adapter=adapter)
        # The worst case of the key/value cache, refused now rather than when
        # the batch is full and its sequences long.
        params = loaded.params
        check_cache_fits(params, max_batch, params.context, "(llaf serve --max-batch and --context)")
        kv = cache_bytes(params, max_batch, params.context)
        app.state.server.ready(loaded)
        print(f"llaf: serving {name} on http://{host}:{port}/ "
              f"(backend {params.engine.backend}, storage {params.storage}, context {params.context}, "
              f"max batch {max_batch}: key/value cache up to {kv / 2**20:.0f} MiB)", flush=True)

    print(f"llaf: loading {name}; http://{host}:{port}/health says when it is ready", flush=True)
    # Our own shutdown ends every request within shutdown_grace; uvicorn's
    # (which cancels the tasks, a traceback each) is only a backstop for
    # clients that stop reading.
    config = uvicorn.Config(app, host=host, port=port, log_level="info", http=header_timeout_protocol(header_timeout),
                            timeout_graceful_shutdown=int(shutdown_grace) + 5)
    failed: list[BaseException] = []
    _uvicorn_server(config, app.state.server, load_model, failed).run()
    if failed:
        raise failed[0]


def _serve_on_ray(model: str | Path | None, backend: str | None, context: int | None, host: str, port: int,
                  model_id: str | None, storage: str | None, max_body: int, hosts: list[str],
                  shutdown_grace: float, max_batch: int, replicas: int, ray_address: str | None,
                  strict_model: bool = False, threads: int | None = None,
                  adapter: str | Path | None = None) -> None:
    """`serve` with `replicas` engines on Ray Serve; each replica loads the model."""
    from ..generation import DEFAULT_CONTEXT

    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise LlafError(f"the number of replicas (--replicas) must be at least 1, got {replicas}")
    try:
        from .replicas import ReplicaConfig, serve_replicas
    except ImportError as e:
        raise LlafError(f"--replicas and --ray-address need Ray Serve (pip install 'llaf[ray]'): {e}") from None
    config = ReplicaConfig(None if model is None else str(model), backend,
                           DEFAULT_CONTEXT if context is None else context, storage, model_id, max_body, hosts,
                           shutdown_grace, max_batch, strict_model, threads,
                           None if adapter is None else str(Path(adapter).resolve()))
    serve_replicas(config, replicas, ray_address, host, port)
