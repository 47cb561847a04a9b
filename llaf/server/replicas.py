"""Scale-out on Ray Serve: ``llaf serve --replicas N [--ray-address ADDRESS]``.

Each replica is a Ray Serve replica (a Ray actor) that loads its own Model
and runs its own Scheduler behind the very FastAPI app of the
single-process server (`create_app`, mounted with Ray Serve's ingress), so
routes, error bodies, streaming and the chat page are the same code. Ray
Serve's HTTP proxy listens on ``--host``/``--port`` and spreads requests
over the replicas; Ray's controller replaces a replica whose process dies.
A client that hangs up makes the proxy cancel its request on the replica,
which ends the response there and so frees its sequence, as alone.

Without an address, `serve_replicas` starts a Ray of its own on this
machine (stopped with the server); with one, it joins that cluster, deploys
the application ``llaf`` there, and deletes it again on Ctrl-C or SIGTERM.
Every node that may hold a replica needs llaf and the model at the same
path (or the default model in its cache).

Ray is an optional dependency (``pip install 'llaf[ray]'``): this module is
imported only when ``--replicas`` or ``--ray-address`` is given.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from fastapi import FastAPI
from ray import serve

from ..errors import LlafError

APP_NAME = "llaf"  # the Ray Serve application: one per cluster


@dataclass(frozen=True)
class ReplicaConfig:
    """What each replica needs to load its model and build its app; sent to
    the replicas by Ray (pickled), so plain values only."""

    model: str | None
    backend: str | None
    context: int
    storage: str | None
    model_id: str | None
    max_body: int
    allowed_hosts: list[str] | None
    shutdown_grace: float
    max_batch: int
    strict_model: bool = False
    threads: int | None = None
    adapter: str | None = None


@serve.ingress()
class Engine:
    """One replica: a model, its scheduler, and the FastAPI app over them."""

    def __init__(self, config: ReplicaConfig) -> None:
        from ..generation import load
        from ..model import check_cache_fits

        self.config = config
        self.model = load(config.model, backend=config.backend, context=config.context, storage=config.storage,
                          threads=config.threads, adapter=config.adapter)
        params = self.model.params
        check_cache_fits(params, config.max_batch, params.context, "(llaf serve --max-batch and --context)")

    def __serve_build_asgi_app__(self) -> FastAPI:
        from .app import create_app

        c = self.config
        return create_app(self.model, c.model_id, max_body=c.max_body, allowed_hosts=c.allowed_hosts,
                          shutdown_grace=c.shutdown_grace, max_batch=c.max_batch, strict_model=c.strict_model,
                          replicas=live_replicas)


def live_replicas() -> int:
    """The replicas of the application that are running now (Ray's controller)."""
    app = serve.status().applications.get(APP_NAME)
    if app is None:
        return 0
    return sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())


def serve_replicas(config: ReplicaConfig, replicas: int, address: str | None, host: str, port: int) -> None:
    """Deploy `replicas` engines behind Ray Serve's proxy on host:port, on
    the Ray cluster at `address` (None: a local Ray started here), and
    serve until Ctrl-C or SIGTERM."""
    import ray

    if config.model is not None and Path(config.model).exists():
        # The replicas' working directory is not ours: an absolute path.
        config = ReplicaConfig(**{**config.__dict__, "model": str(Path(config.model).resolve())})
    local = address is None
    try:
        if local:
            # A Ray of our own, on loopback, with a CPU for each replica
            # (Ray's CPUs are a scheduling count, not a binding).
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                     num_cpus=max(os.cpu_count() or 1, replicas), logging_level="warning")
        else:
            ray.init(address=address, logging_level="warning")
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise LlafError(f"cannot start or reach Ray{'' if local else f' at {address}'}: {e}") from None
    try:
        serve.start(http_options={"host": host, "port": port})
        deployment = serve.deployment(Engine).options(
            num_replicas=replicas,
            ray_actor_options={"num_cpus": 1},
            # Up to a batch decoding and a batch waiting in each replica's
            # scheduler; the rest wait in Ray's router, which sends each to
            # the replica least busy when a place frees.
            max_ongoing_requests=2 * config.max_batch,
            graceful_shutdown_timeout_s=config.shutdown_grace)
        try:
            serve.run(deployment.bind(config), name=APP_NAME, route_prefix="/", blocking=False)
        except RuntimeError as e:  # a replica failed to start (its model, memory): Ray's message
            raise LlafError(f"the replicas did not start: {e}") from None
        where = "a local Ray" if local else f"the Ray cluster at {address}"
        print(f"llaf: serving {replicas} replica{'s' if replicas > 1 else ''} on http://{host}:{port}/ through "
              f"Ray Serve on {where} (backend {config.backend or 'default'}, context {config.context}, "
              f"max batch {config.max_batch} each)", flush=True)
        _wait_for_signal()
    finally:
        if local:
            serve.shutdown()
        else:  # the cluster and its other applications go on
            try:
                serve.delete(APP_NAME)
            except Exception as e:  # reported, not raised: we are leaving anyway
                print(f"llaf: could not delete the application {APP_NAME!r} from Ray: {e}", flush=True)
        ray.shutdown()


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(sig: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    while not stop.wait(1.0):  # a timeout, so that the main thread wakes for signals
        pass
