"""Choosing the next token from the model's logits.

    params = SamplingParams(temperature=0.7, top_p=0.9, seed=1)
    sampler = Sampler(params)
    tok = sampler.sample(logits)          # also remembers `tok` for the repetition penalty

The steps, in the order transformers and llama.cpp apply them:

1. repetition penalty over every id seen so far (prompt and output): a
   positive logit is divided by the penalty, a negative one multiplied;
   then OpenAI's presence and frequency penalties over the ids generated
   so far (not the prompt's, as OpenAI and vLLM): a generated id's logit
   loses `presence_penalty` once and `frequency_penalty` per time it came;
2. temperature 0: the arg max (greedy decoding, as `llaf.gen`); else the
   logits are divided by the temperature;
3. top-k: only the k most likely tokens stay (0: all); then min-p: only
   the tokens at least `min_p` times as likely as the likeliest stay;
4. top-p: only the smallest set of most likely tokens whose probabilities
   sum to at least p stays;
5. a draw from the softmax of what is left, with a `numpy.random.Generator`
   seeded by `seed` (the same seed gives the same tokens).

With a `json_schema`, every token that would not keep the text valid JSON
for the schema gets a logit of -inf first (llaf/constraints.py).

Stop strings are applied to the text (llaf/generation.py), not here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from . import checks
from .errors import LlafError

if TYPE_CHECKING:
    from .constraints import JsonConstraint
    from .tokenizer import Tokenizer

# A sampling value of the wrong type or out of range; `param` names the option.
SamplingError = checks.ArgumentError


@dataclass(frozen=True)
class SamplingParams:
    """How to pick each next token. The defaults are greedy decoding.

    temperature: >= 0; 0 is greedy (the arg max).
    top_k: keep the k most likely tokens; 0 keeps all.
    top_p: in (0, 1]; keep the most likely tokens up to this total probability.
    repetition_penalty: > 0; 1 is none, above 1 discourages repeating seen ids.
    presence_penalty, frequency_penalty: in [-2, 2] (OpenAI's); 0 is none.
    min_p: in [0, 1]; keep the tokens at least min_p times as likely as the likeliest; 0 keeps all.
    seed: a non-negative integer for reproducible draws; None draws fresh entropy.
    stop: strings that end the generation; neither they nor what follows are returned.
    json_schema: a JSON schema (a dict) the text must follow, as compact JSON
        ({"type": "object"}: any JSON object); None: any text.
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    json_schema: dict[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        temperature = checks.number("temperature", self.temperature)
        if temperature < 0:
            raise SamplingError("temperature", f"temperature must be >= 0, got {self.temperature}")
        top_k = checks.integer("top_k", self.top_k)
        if top_k < 0:
            raise SamplingError("top_k", f"top_k must be >= 0, got {top_k}")
        top_p = checks.number("top_p", self.top_p)
        if not 0 < top_p <= 1:
            raise SamplingError("top_p", f"top_p must be in (0, 1], got {self.top_p}")
        penalty = checks.number("repetition_penalty", self.repetition_penalty)
        if penalty <= 0:
            raise SamplingError("repetition_penalty", f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        seed = self.seed
        if seed is not None:
            seed = checks.integer("seed", seed)
            if seed < 0:
                raise SamplingError("seed", f"seed must be >= 0, got {seed}")
        stop = self.stop
        if isinstance(stop, str):
            stop = (stop,)
        if not isinstance(stop, Iterable) or not all(isinstance(s, str) for s in stop):
            raise SamplingError("stop", f"stop must be a string or a list of strings, got {self.stop!r}")
        stop = tuple(stop)
        if any(s == "" for s in stop):
            raise SamplingError("stop", "stop strings must not be empty")
        min_p = checks.number("min_p", self.min_p)
        if not 0 <= min_p <= 1:
            raise SamplingError("min_p", f"min_p must be in [0, 1], got {self.min_p}")
        openai_penalties = {}
        for name in ("presence_penalty", "frequency_penalty"):
            value = checks.number(name, getattr(self, name))
            if not -2 <= value <= 2:
                raise SamplingError(name, f"{name} must be in [-2, 2], got {getattr(self, name)}")
            openai_penalties[name] = value
        schema = self.json_schema
        if schema is not None:
            from .constraints import check_schema

            schema = check_schema("json_schema", schema)
        for name, value in [("temperature", temperature), ("top_k", top_k), ("top_p", top_p),
                            ("repetition_penalty", penalty), ("seed", seed), ("stop", stop), ("min_p", min_p),
                            *openai_penalties.items(), ("json_schema", schema)]:
            object.__setattr__(self, name, value)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def of(cls, sampling: SamplingParams | None = None, options: Mapping[str, Any] | None = None) -> SamplingParams:
        """`sampling` (default: greedy) with the keyword `options` replacing its fields."""
        base = sampling_params("sampling", sampling)
        if not options:
            return base
        names = [f.name for f in fields(cls)]
        for key in options:
            if key not in names:
                raise LlafError(f"unknown sampling option {key!r}: choose from {', '.join(names)}")
        return cls(**{n: options.get(n, getattr(base, n)) for n in names})


GREEDY = SamplingParams()


def sampling_params(name: str, value: Any) -> SamplingParams:
    """`value`, a SamplingParams, or greedy decoding for None."""
    if value is None:
        return GREEDY
    return checks.instance(name, value, SamplingParams,
                           "a llaf.SamplingParams, e.g. SamplingParams(temperature=0.7) (greedy is the default)")


def softmax(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # a difference past float64's range is -inf: its weight 0
        e = np.subtract(x, np.max(x))
        np.exp(e, out=e)  # (in place: a fresh array of the vocabulary's size is page faults too)
    e /= e.sum()
    return e


def nucleus(ids: np.ndarray, probs: np.ndarray, top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """The smallest set of the likeliest `ids` whose probabilities reach
    `top_p` (ties in the order given), likeliest first, and their
    probabilities renormalized.  Sorted a few at a time: the likeliest 64,
    then 512, ..., each time with every token tied with the last of them,
    until their sum reaches `top_p`."""
    count = min(64, ids.size)
    while True:
        if count < ids.size:
            least = np.partition(probs, ids.size - count)[ids.size - count]  # the count-th likeliest
            some = np.flatnonzero(probs >= least)
        else:
            some = np.arange(ids.size)
        order = some[np.argsort(-probs[some], kind="stable")]
        total = np.cumsum(probs[order])
        if total[-1] >= top_p or some.size == ids.size:
            order = order[: int(np.searchsorted(total, top_p)) + 1]
            return ids[order], probs[order] / probs[order].sum()
        count *= 8


class Sampler:
    """Picks tokens for one sequence: keeps the ids seen (for the repetition
    penalty), the random generator (for reproducible draws) and, with a
    `json_schema`, the sequence's matcher of it (which needs the `tokenizer`)."""

    def __init__(self, params: SamplingParams = GREEDY, seen: Sequence[int] = (), *, choice: int = 0,
                 tokenizer: Tokenizer | None = None) -> None:
        """`choice`: which of several choices drawn for one request (OpenAI's
        `n`) this sampler draws: choice 0 uses `seed` itself, choice j > 0
        the seed sequence (seed, j), so that each is reproducible and they differ."""
        self.params = params = sampling_params("params", params)
        self.rng = np.random.default_rng(params.seed if params.seed is None or choice == 0 else [params.seed, choice])
        self.seen: set[int] = set(checks.token_ids("seen", seen).tolist())
        self.generated: Counter[int] = Counter()  # ids sampled so far, for the presence and frequency penalties
        self.constraint: JsonConstraint | None = None
        if params.json_schema is not None:
            from .constraints import JsonConstraint

            if tokenizer is None:
                raise LlafError("a json_schema needs the tokenizer: Sampler(params, seen, tokenizer=...)")
            self.constraint = JsonConstraint(params.json_schema, tokenizer)

    @property
    def finished(self) -> bool:
        """The json_schema's document is complete: only the end of turn could follow."""
        return self.constraint is not None and self.constraint.finished

    def observe(self, ids: Iterable[int]) -> None:
        self.seen.update(checks.token_ids("ids", ids).tolist())

    @staticmethod
    def checked(logits: np.ndarray) -> np.ndarray:
        """`logits` as a flat array, if a token can be drawn from them."""
        x = np.asarray(logits)
        if x.size == 0 or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise LlafError(f"logits must be a non-empty array of numbers, got {checks.shown(logits)}")
        x = x.reshape(-1)
        if np.issubdtype(x.dtype, np.integer) or np.isfinite(x).all():  # (one pass where all is well)
            return x
        if np.isnan(x).any() or np.isposinf(x).any():
            i = int(np.argmax(np.isnan(x) | np.isposinf(x)))
            raise LlafError(f"logits must be numbers or -inf (a token ruled out), got {x[i]} at {i}")
        if not (x > -np.inf).any():
            raise LlafError("no token can be drawn: every logit is -inf")
        return x

    def penalized(self, logits: np.ndarray) -> np.ndarray:
        """`logits` after the penalties: a float64 copy where one applies, else
        the logits as they are (`checked`), so that a greedy token copies no
        row (docs/PERFORMANCE.md)."""
        x = self.checked(logits)
        p = self.params
        repeated = p.repetition_penalty != 1 and bool(self.seen)
        counted = bool(p.presence_penalty or p.frequency_penalty) and bool(self.generated)
        if not (repeated or counted):
            return x
        x = np.array(x, dtype=np.float64)
        if repeated:
            ids = np.fromiter(self.seen, dtype=np.int64)
            ids = ids[(ids >= 0) & (ids < x.size)]
            v = x[ids]
            x[ids] = np.where(v > 0, v / p.repetition_penalty, v * p.repetition_penalty)
        if counted:
            ids = np.fromiter(self.generated.keys(), dtype=np.int64)
            counts = np.fromiter(self.generated.values(), dtype=np.float64)
            keep = (ids >= 0) & (ids < x.size)
            x[ids[keep]] -= p.presence_penalty + p.frequency_penalty * counts[keep]
        return x

    def candidates(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ids that may be drawn and their probabilities (temperature > 0).

        Only top-p orders tokens, and then only the likeliest few it keeps:
        sorting the whole vocabulary cost more than half a decode step
        (docs/PERFORMANCE.md)."""
        p = self.params
        logits = self.penalized(logits)
        with np.errstate(over="ignore"):
            x = np.true_divide(logits, p.temperature, dtype=np.float64)
        ids = np.arange(x.size)
        # Where every token may be drawn (no json_schema rules one out), no
        # mask or gathered copy of the vocabulary: at 16 sampled sequences a
        # pass, sampling took a fifth of the server's time (docs/PERFORMANCE.md).
        if not np.isfinite(x).all():
            if np.isinf(x[logits > -np.inf]).any():
                # A temperature so small that logits over it leave float64's
                # range: all the probability is the likeliest's, as in the
                # limit (inf - inf would make NaNs, and the draw garbage).
                x = np.where(logits == logits.max(), 0.0, -np.inf)
            ids = np.flatnonzero(x > -np.inf)  # all of them, but for those a json_schema rules out
            x = x[ids]
        if 0 < p.top_k < ids.size:
            best = np.argpartition(-x, p.top_k - 1)[: p.top_k]
            ids, x = ids[best], x[best]
        probs = softmax(x)
        if p.min_p > 0:
            keep = probs >= p.min_p * probs.max()
            ids, probs = ids[keep], probs[keep] / probs[keep].sum()
        if p.top_p < 1:
            ids, probs = nucleus(ids, probs, p.top_p)
        return ids, probs

    def sample(self, logits: np.ndarray) -> int:
        """The next token for these logits; it counts as seen from now on."""
        if self.constraint is not None:
            logits = self.constraint.mask(logits)
        if self.params.greedy:
            tok = int(np.argmax(self.penalized(logits)))
        else:
            ids, probs = self.candidates(logits)
            tok = int(ids[min(int(np.searchsorted(np.cumsum(probs), self.rng.random(), side="right")),
                              ids.size - 1)])
        if self.constraint is not None:
            self.constraint.accept(tok)
        self.seen.add(tok)
        self.generated[tok] += 1
        return tok
