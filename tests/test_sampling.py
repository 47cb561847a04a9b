"""The sampler on hand-made logits: validation, greedy, the distributions of
temperature, top-k and top-p, the repetition penalty, seeds; and the
hold-back of text that may begin a stop string."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from llaf.errors import LlafError
from llaf.generation import held_back
from llaf.sampling import Sampler, SamplingError, SamplingParams, nucleus, softmax

LOGITS = np.array([1.0, 2.5, -0.5, 0.3, 2.0, -3.0], dtype=np.float32)
DRAWS = 20_000
# Each frequency is a mean of DRAWS Bernoulli draws: its standard deviation is
# at most sqrt(0.25 / DRAWS) = 0.0035, so 0.015 is more than four of them.
TOLERANCE = 0.015


def frequencies(params: SamplingParams, logits: np.ndarray = LOGITS) -> np.ndarray:
    sampler = Sampler(params)
    draws = [sampler.sample(logits) for _ in range(DRAWS)]
    return np.bincount(draws, minlength=logits.size) / DRAWS


@pytest.mark.parametrize(
    ("options", "param", "message"),
    [
        ({"temperature": -1}, "temperature", "temperature must be >= 0, got -1"),
        ({"temperature": float("nan")}, "temperature", "temperature must be a finite number, got nan"),
        ({"temperature": "hot"}, "temperature", "temperature must be a number, got 'hot'"),
        ({"top_k": -2}, "top_k", "top_k must be >= 0, got -2"),
        ({"top_k": 2.5}, "top_k", "top_k must be an integer, got 2.5"),
        ({"top_p": 0}, "top_p", "top_p must be in (0, 1], got 0"),
        ({"top_p": 1.5}, "top_p", "top_p must be in (0, 1], got 1.5"),
        ({"repetition_penalty": 0}, "repetition_penalty", "repetition_penalty must be > 0, got 0"),
        ({"seed": -1}, "seed", "seed must be >= 0, got -1"),
        ({"seed": True}, "seed", "seed must be an integer, got True"),
        ({"stop": ["ok", ""]}, "stop", "stop strings must not be empty"),
        ({"stop": [3]}, "stop", "stop must be a string or a list of strings, got [3]"),
        ({"min_p": 1.5}, "min_p", "min_p must be in [0, 1], got 1.5"),
        ({"presence_penalty": -2.5}, "presence_penalty", "presence_penalty must be in [-2, 2], got -2.5"),
        ({"frequency_penalty": "1"}, "frequency_penalty", "frequency_penalty must be a number, got '1'"),
    ],
)
def test_out_of_range_values_are_refused(options: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(SamplingError) as e:
        SamplingParams(**options)
    assert str(e.value) == message
    assert e.value.param == param
    assert isinstance(e.value, LlafError)


def test_options_replace_fields_and_unknown_ones_are_named() -> None:
    base = SamplingParams(temperature=0.5, seed=3)
    assert SamplingParams.of(base, {"top_k": 4}) == SamplingParams(temperature=0.5, seed=3, top_k=4)
    assert SamplingParams.of(None, {"stop": "\n"}).stop == ("\n",)
    assert SamplingParams.of() == SamplingParams()
    with pytest.raises(LlafError, match=r"^unknown sampling option 'temp': choose from temperature, top_k, top_p, "
                                        r"repetition_penalty, seed, stop, min_p, presence_penalty, frequency_penalty, "
                                        r"json_schema$"):
        SamplingParams.of(None, {"temp": 1})


def test_temperature_zero_is_the_arg_max() -> None:
    sampler = Sampler(SamplingParams(temperature=0, seed=1))
    assert [sampler.sample(LOGITS) for _ in range(5)] == [1] * 5


@pytest.mark.parametrize("temperature", [1e-300, 1e-307, 1e-308, 5e-324])
def test_tiny_temperatures_are_the_arg_max_without_warnings(temperature: float) -> None:
    # logits / temperature overflows to inf here: the draw must still be the
    # likeliest token (inf - inf once made NaN probabilities and garbage)
    logits = np.array([1.0, 2.5, -0.5, 0.3, 2.0, -3.0, -1e30, 1e-30], dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(10):
            sampler = Sampler(SamplingParams(temperature=temperature, seed=seed))
            assert [sampler.sample(logits) for _ in range(3)] == [1, 1, 1]
        # every logit far below zero: each over the temperature is -inf
        assert Sampler(SamplingParams(temperature=temperature, seed=1)).sample(np.array([-5.0, -2.0, -9.0])) == 1
    # a tie between the likeliest stays a draw between them
    tied = np.array([3.0, -1.0, 3.0, 0.5])
    draws = {Sampler(SamplingParams(temperature=1e-308, seed=seed)).sample(tied) for seed in range(40)}
    assert draws == {0, 2}


@pytest.mark.parametrize("options", [{"top_k": 1}, {"top_p": 1e-6}, {"top_k": 1, "top_p": 0.5}])
def test_top_k_one_and_tiny_top_p_are_greedy(options: dict[str, Any]) -> None:
    for seed in range(20):
        sampler = Sampler(SamplingParams(temperature=1.5, seed=seed, **options))
        assert sampler.sample(LOGITS) == 1


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_frequencies_follow_the_softmax_of_logits_over_temperature(temperature: float) -> None:
    expected = softmax(LOGITS.astype(np.float64) / temperature)
    got = frequencies(SamplingParams(temperature=temperature, seed=7))
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


@pytest.mark.parametrize("ruled_out", [False, True])
@pytest.mark.parametrize("top_k", [0, 50])
def test_candidates_are_the_softmax_of_logits_over_temperature(ruled_out: bool, top_k: int) -> None:
    """A vocabulary's size of logits, with a token ruled out (-inf, as a
    json_schema rules them out) or none: the candidates are every token
    still possible (or the top-k) with exp(x/T - max) over their sum, here
    computed apart from llaf's own softmax."""
    logits = (np.random.default_rng(3).standard_normal(49_152) * 4).astype(np.float32)
    if ruled_out:
        logits[[7, 40_000]] = -np.inf
    ids, probs = Sampler(SamplingParams(temperature=0.7, top_k=top_k)).candidates(logits)
    possible = np.flatnonzero(logits > -np.inf)
    expected_ids = possible if not top_k else possible[np.argsort(-logits[possible], kind="stable")[:top_k]]
    np.testing.assert_array_equal(np.sort(ids), np.sort(expected_ids))
    x = logits[ids].astype(np.float64) / 0.7
    e = np.exp(x - x.max())
    np.testing.assert_allclose(probs, e / e.sum(), rtol=1e-12)
    assert probs.dtype == np.float64 and abs(probs.sum() - 1) < 1e-12


def test_top_k_draws_only_the_k_best_in_proportion() -> None:
    got = frequencies(SamplingParams(temperature=1.0, top_k=3, seed=11))
    best = [1, 4, 0]
    expected = np.zeros(LOGITS.size)
    expected[best] = softmax(LOGITS[best].astype(np.float64))
    assert got[[2, 3, 5]].sum() == 0
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    p = softmax(LOGITS.astype(np.float64))
    # Sorted: token 1 (0.47), 4 (0.29), 0 (0.10), ...: 0.7 needs tokens 1 and 4.
    assert p[1] < 0.7 < p[1] + p[4]
    got = frequencies(SamplingParams(temperature=1.0, top_p=0.7, seed=5))
    expected = np.zeros(LOGITS.size)
    expected[[1, 4]] = p[[1, 4]] / (p[1] + p[4])
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)
    assert got[[0, 2, 3, 5]].sum() == 0


@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.99, 0.9999])
def test_top_p_sorts_only_the_likeliest_and_keeps_what_sorting_all_keeps(top_p: float) -> None:
    """`nucleus` sorts the likeliest 64, 512, ... tokens until they reach
    top_p: on 50000 logits tied in groups (one decimal), where its cuts fall
    inside ties, it keeps the tokens that sorting them all (stably) keeps."""
    logits = np.round(np.random.default_rng(5).standard_normal(50_000) * 2.5, 1)
    probs = softmax(logits)
    order = np.argsort(-probs, kind="stable")
    kept = order[: int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1]
    ids, got = nucleus(np.arange(logits.size), probs, top_p)
    np.testing.assert_array_equal(ids, kept)
    np.testing.assert_allclose(got, probs[kept] / probs[kept].sum(), rtol=1e-12)


def test_repetition_penalty_divides_positive_and_multiplies_negative_seen_logits() -> None:
    sampler = Sampler(SamplingParams(repetition_penalty=2.0), seen=[1, 2])
    np.testing.assert_allclose(sampler.penalized(LOGITS), [1.0, 1.25, -1.0, 0.3, 2.0, -3.0])
    # Greedy with the penalty: token 4 (2.0) beats the seen token 1 (1.25);
    # once 4 is seen too it drops to 1.0, and 1 wins.
    assert sampler.sample(LOGITS) == 4
    assert sampler.sample(LOGITS) == 1
    assert Sampler(SamplingParams(repetition_penalty=1.0), seen=[1]).sample(LOGITS) == 1


def test_min_p_keeps_the_tokens_at_least_min_p_times_the_likeliest() -> None:
    p = softmax(LOGITS.astype(np.float64))
    # Token 1 is the likeliest (0.47); 0.3 of it is 0.14: tokens 1 and 4 (0.29) stay, 0 (0.10) does not.
    assert p[4] > 0.3 * p[1] > p[0]
    got = frequencies(SamplingParams(temperature=1.0, min_p=0.3, seed=9))
    expected = np.zeros(LOGITS.size)
    expected[[1, 4]] = p[[1, 4]] / (p[1] + p[4])
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)
    assert got[[0, 2, 3, 5]].sum() == 0


def test_presence_and_frequency_penalties_count_generated_tokens_only() -> None:
    sampler = Sampler(SamplingParams(presence_penalty=0.5, frequency_penalty=0.25), seen=[4])
    np.testing.assert_allclose(sampler.penalized(LOGITS), LOGITS)  # the prompt's ids are not penalized
    assert sampler.sample(LOGITS) == 1
    np.testing.assert_allclose(sampler.penalized(LOGITS), [1.0, 1.75, -0.5, 0.3, 2.0, -3.0])  # 2.5 - 0.5 - 0.25
    # Now 4 (2.0) beats 1 (1.75); then 1 (1.75) beats 4 (1.25), and 1 twice is 2.5 - 0.5 - 2 * 0.25 = 1.5.
    assert sampler.sample(LOGITS) == 4
    assert sampler.sample(LOGITS) == 1
    np.testing.assert_allclose(sampler.penalized(LOGITS)[[1, 4]], [1.5, 1.25])


def test_each_choice_of_a_seed_draws_its_own_reproducible_stream() -> None:
    logits = np.zeros(1000, dtype=np.float32)

    def draws(choice: int) -> list[int]:
        sampler = Sampler(SamplingParams(temperature=1.0, seed=42), choice=choice)
        return [sampler.sample(logits) for _ in range(20)]

    single = Sampler(SamplingParams(temperature=1.0, seed=42))
    assert draws(0) == [single.sample(logits) for _ in range(20)]  # choice 0 is what n=1 draws
    assert draws(1) == draws(1) and draws(2) == draws(2)
    assert len({tuple(draws(c)) for c in range(3)}) == 3


def test_a_seed_reproduces_its_draws_and_other_seeds_differ() -> None:
    logits = np.zeros(1000, dtype=np.float32)

    def draws(seed: int) -> list[int]:
        sampler = Sampler(SamplingParams(temperature=1.0, seed=seed))
        return [sampler.sample(logits) for _ in range(20)]

    assert draws(42) == draws(42)
    assert draws(42) != draws(43)


@pytest.mark.parametrize(
    ("text", "stops", "held"),
    [
        ("The end", ["END"], 0),
        ("Hello <", ["<|user|>"], 1),
        ("Hello <|us", ["<|user|>"], 4),
        ("Hello <|user|", ["<|user|>", "|"], 7),
        ("abc", ["bcd", "c"], 2),
        ("", ["x"], 0),
    ],
)
def test_held_back_is_the_longest_end_that_begins_a_stop_string(text: str, stops: list[str], held: int) -> None:
    assert held_back(text, stops) == held


def test_logits_without_a_drawable_token_are_an_error() -> None:
    """NaN logits drew token 0 greedily, and logits all -inf raised numpy's
    own ValueError when sampled."""
    for params in (SamplingParams(), SamplingParams(temperature=1.0, seed=1)):
        numbers = "logits must be numbers or -inf (a token ruled out), got"
        for logits, message in ((np.array([np.nan, 1.0]), f"{numbers} nan at 0"),
                                (np.array([0.0, np.inf]), f"{numbers} inf at 1"),
                                (np.array([-np.inf, -np.inf]), "no token can be drawn: every logit is -inf")):
            with pytest.raises(LlafError) as e:
                Sampler(params).sample(logits)
            assert str(e.value) == message
    assert Sampler().sample(np.array([-np.inf, 0.5, -np.inf])) == 1
