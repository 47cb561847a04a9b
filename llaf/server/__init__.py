"""`llaf serve`: an OpenAI-compatible HTTP server for one model, and a web chat page.

    llaf serve [--model M] [--backend B] [--host 127.0.0.1] [--port 8000] [--max-batch 8]

Routes (FastAPI on uvicorn):

* ``POST /v1/completions`` and ``POST /v1/chat/completions``: OpenAI's
  request and response bodies, with ``"stream": true`` as server-sent events
  (``data: {chunk}`` ... ``data: [DONE]``). Sampling: ``temperature``
  (default 1, as OpenAI's; 0 is greedy), ``top_p``, ``seed``, ``stop``,
  ``max_tokens`` (``max_completion_tokens`` for chat), and llaf's
  ``top_k`` and ``repetition_penalty``.
* ``GET /v1/models``, ``GET /v1/models/{id}``, ``GET /health``.
* ``GET /``: a chat page that streams the replies (llaf/static/index.html).

One concern a module:

* ``app.py``: the FastAPI application: its routes, the checks of a request
  and the OpenAI response bodies built from a generation's events;
* ``schemas.py``: the request bodies (pydantic models);
* ``errors.py``: `APIError`, OpenAI's error body, and pydantic's validation
  errors told in it;
* ``scheduler.py``: the engine's one thread, running every generation;
* ``events.py``: what the engine thread tells a request (a piece of text,
  the end of a choice, an error) and how a response reads it: one JSON body,
  or server-sent events;
* ``guards.py``: the defences against abuse (``Host`` check, body limit,
  deadline for request headers);
* ``limits.py``: the limits' defaults (no FastAPI: the command line shows them);
* ``serve.py``: `serve`, which loads the model and runs uvicorn.
* ``replicas.py``: ``--replicas N`` / ``--ray-address``: N replicas of the
  app, each with its own model and scheduler, on Ray Serve (optional).

This package's ``__init__`` imports nothing, so that ``llaf.server.limits``
stays light.
"""
