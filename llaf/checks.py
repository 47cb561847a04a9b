"""Checks of the arguments llaf's public functions take.

Each check raises an `ArgumentError` (a `LlafError`) that names the argument
and says what it must be, so that a wrong type or value is refused in one
line before it reaches numpy, the tokenizer or the engine, whose own errors
(a ``TypeError`` from deep inside, or a crash) say nothing to the caller.
"""

from __future__ import annotations

import math
import os
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import LlafError

T = TypeVar("T")

# A caller's value shown in a message: a whole prompt or array would bury it.
_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 60


def shown(value: Any) -> str:
    """`value`'s repr, cut short."""
    return _shown.repr(value)


class ArgumentError(LlafError):
    """A bad argument; `param` names it (the server reports it as OpenAI's ``param``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def instance(name: str, value: Any, kind: type[T], what: str) -> T:
    """`value` if it is a `kind`; else an error saying `name` must be `what`."""
    if not isinstance(value, kind):
        raise ArgumentError(name, f"{name} must be {what}, got {shown(value)}")
    return value


def integer(name: str, value: Any) -> int:
    """`value` as an int: a Python or numpy integer, not a bool or a float."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentError(name, f"{name} must be an integer, got {shown(value)}")
    return int(value)


def number(name: str, value: Any) -> float:
    """`value` as a float: a finite Python or numpy number, not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(name, f"{name} must be a number, got {shown(value)}")
    if not math.isfinite(value):
        raise ArgumentError(name, f"{name} must be a finite number, got {value}")
    return float(value)


def count(name: str, value: Any) -> int:
    """`value` as a non-negative int."""
    n = integer(name, value)
    if n < 0:
        raise ArgumentError(name, f"{name} must not be negative, got {n}")
    return n


def port(value: int) -> int:
    """`value` if it is a TCP port number (0: any free one)."""
    if not 0 <= value <= 65535:
        raise ArgumentError("port", f"the port must be between 0 and 65535, got {value}")
    return value


def token_ids(name: str, value: Any, vocab: int | None = None) -> np.ndarray:
    """`value` as a one-dimensional int64 array of token ids (possibly empty),
    each in ``[0, vocab)`` when `vocab` is given."""
    listed = f"{name} must be a list of token ids (integers), got {shown(value)}"
    if isinstance(value, (str, bytes)):  # text is not ids: numpy would make it one 0-d string
        raise ArgumentError(name, f"{listed}: encode text with the model's tokenizer")
    if isinstance(value, Iterable) and not isinstance(value, (Sequence, np.ndarray, Mapping)):
        value = list(value)  # a generator or a set: numpy would make it one 0-d object
    try:
        a = np.asarray(value)
    except Exception:  # ragged nesting, or an object numpy cannot read
        raise ArgumentError(name, listed) from None
    if a.ndim == 0:
        raise ArgumentError(name, listed)
    if a.ndim != 1:
        raise ArgumentError(name, f"token ids must be one-dimensional, got shape {a.shape}")
    huge = a.dtype == object and all(isinstance(x, int) and not isinstance(x, bool) for x in a)
    if a.size and not huge and not np.issubdtype(a.dtype, np.integer):
        raise ArgumentError(name, f"token ids must be integers, got {a.dtype}")
    if vocab is not None or huge:  # Python ints past int64 (numpy keeps them as objects) are in no vocabulary
        lo, hi = (0, vocab) if vocab is not None else (-2**63, 2**63)
        bad = np.array([not lo <= x < hi for x in a]) if huge else (a < lo) | (a >= hi)
        if bad.any():
            i = int(np.argmax(bad))
            where = f" [0, {vocab})" if vocab is not None else ""
            raise ArgumentError(name, f"token id {a[i]} at position {i} is outside the vocabulary{where}")
    return a.astype(np.int64)


def writable(directory: Path) -> None:
    """`directory` made (with its parents) if missing; a LlafError if it
    cannot be, or cannot be written in (checked before minutes of work
    whose results go there)."""
    if directory.exists() and not directory.is_dir():
        raise LlafError(f"{directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LlafError(f"cannot make the directory {directory}: {e.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise LlafError(f"cannot write in {directory}: permission denied")
