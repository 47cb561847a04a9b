"""The one exception type llaf raises for bad input."""


class LlafError(ValueError):
    """A problem with what the caller gave llaf, said in one line.

    The command-line tools print it as ``llaf: <message>`` and exit non-zero.
    """
