"""The exceptions llaf raises: `LlafError` for bad input, `OutOfMemoryError`
when the engine cannot allocate what a call needs, `EngineError` when the
engine itself fails (a bug of llaf's, never blamed on the input)."""


class LlafError(ValueError):
    """A problem with what the caller gave llaf, said in one line.

    The command-line tools print it as ``llaf: <message>`` and exit non-zero.
    """


class OutOfMemoryError(MemoryError):
    """The engine could not allocate the memory a call needed, said in one line.

    Not a `LlafError`: the input may be fine and the machine short of memory
    (the server answers it with a 500, not a 400).  The call had no effect:
    the model and its caches stay usable, and a smaller call can succeed.
    The command-line tools print it as ``llaf: <message>``.
    """


class EngineError(RuntimeError):
    """A failure inside the engine: one of its own assertions, or a backend's
    error, on a call whose arguments llaf had checked.  A bug of llaf's, not
    a problem with the input: the server answers it with a 500
    (``server_error``), the command-line tools with ``llaf: internal error:
    <cause>`` and exit status 70.  The call had no effect but on a cache it
    was given, which is lost.
    """


def first_line(message: str | BaseException) -> str:
    """The first line of a message that may go on (a backend's or a library's
    error, with dumps after it); an exception without one is named by its type."""
    text = str(message).strip()
    if text:
        return text.splitlines()[0]
    return type(message).__name__ if isinstance(message, BaseException) else "no reason given"


def internal_error(e: BaseException) -> str:
    """An unexpected failure (an `EngineError` or any other bug of llaf's) in
    one line that says so and gives its cause."""
    cause = type(e).__name__ + (f": {first_line(e)}" if str(e).strip() else "")
    return f"internal error: {cause} (a bug of llaf's, not a problem with the input)"


def cannot_listen(host: str, port: int, e: OSError) -> LlafError:
    """An address a server (`llaf serve`, `llaf web`) cannot listen on: in
    use, or a host that does not resolve; the user's to change."""
    return LlafError(f"cannot listen on {host}:{port}: {e.strerror or e}")
