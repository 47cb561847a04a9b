"""The exceptions llaf raises: `LlafError` for bad input, `OutOfMemoryError`
when the engine cannot allocate what a call needs."""


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
