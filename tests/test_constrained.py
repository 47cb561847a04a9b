"""JSON output (llaf/constraints.py): the token mask on its own, against
logits chosen to pull away from valid JSON; SmolLM2 through the Python API,
the command line and `llaf serve` (20 prompts, each with its own schema,
through the openai client); bad schemas refused in one line."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import openai
import pytest

import llaf
from llaf.assets import default_model_path
from llaf.constraints import ANY_OBJECT
from llaf.sampling import Sampler, SamplingParams
from llaf.tokenizer import Tokenizer, from_gguf

from .conftest import MODEL_ID, SERVER_BACKEND, LiveServer
from .test_cli import llaf as run_llaf

PERSON = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 16},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "role": {"enum": ["admin", "user", "guest"]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 2}},
    "required": ["name", "age", "role", "tags"], "additionalProperties": False}


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return from_gguf(default_model_path())


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "foo"}, "json_schema is not a usable JSON schema: Invalid type: foo"),
    ({"type": "string", "pattern": "(("}, "json_schema is not a usable JSON schema: regex parse error: (( ^ "
                                          "error: unclosed group"),
    ({"$ref": "#/$defs/gone"}, "json_schema is not a usable JSON schema: Pointer '/$defs/gone' does not exist"),
    ({"not": {"type": "string"}}, "json_schema is not a usable JSON schema: Unimplemented keys: [\"not\"]"),
    # only itself: no document at all (the matcher failed at the first token, a 500)
    ({"$ref": "#"}, "json_schema is not a usable JSON schema: no document matches it (NoExtensionBias)"),
    ({"anyOf": [{"$ref": "#"}]}, "json_schema is not a usable JSON schema: no document matches it (NoExtensionBias)"),
    ("{}", "json_schema must be a JSON schema (an object, e.g. {\"type\": \"object\"}), got '{}'"),
    ({"enum": [float("nan")]}, "json_schema is not JSON: Out of range float values are not JSON compliant"),
])
def test_a_bad_schema_is_one_error_that_names_it(schema: Any, message: str) -> None:
    with pytest.raises(llaf.LlafError) as e:
        SamplingParams(json_schema=schema)
    assert str(e.value) == message
    assert getattr(e.value, "param", None) == "json_schema"


def adversarial(tokenizer: Tokenizer, rng: np.random.Generator, vocab: int) -> np.ndarray:
    """Random logits, with the end of turn and a few tokens that break JSON (a
    newline, letters, a closing brace) far above the rest."""
    x = rng.normal(0, 4, vocab)
    for text in ["\n", "Sure", "}", " {", "```"]:
        x[tokenizer.encode(text)[0]] += 30
    x[sorted(tokenizer.eos_ids)] += 40
    return x


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_the_mask_keeps_any_logits_to_valid_json(tokenizer: Tokenizer, temperature: float) -> None:
    # No model: logits that favour what breaks JSON, and the end of turn
    # above all. Every document still ends complete and valid, and the end of
    # turn comes only then.
    vocab = 49152
    rng = np.random.default_rng(7)
    for seed in range(5):
        sampler = Sampler(SamplingParams(temperature=temperature, top_k=50 * seed, seed=seed, json_schema=PERSON),
                          tokenizer=tokenizer)
        ids: list[int] = []
        while not sampler.finished:
            tok = sampler.sample(adversarial(tokenizer, rng, vocab))
            assert tok not in tokenizer.eos_ids, tokenizer.decode(ids)
            ids.append(tok)
            assert len(ids) < 200, tokenizer.decode(ids)
        jsonschema.validate(json.loads(tokenizer.decode(ids)), PERSON)
        # Complete: the end of turn is the one token left, whatever the logits.
        assert sampler.sample(-adversarial(tokenizer, rng, vocab)) in tokenizer.eos_ids


@pytest.fixture(scope="module")
def model(backend: str) -> llaf.Model:
    return llaf.load(backend=backend, context=256)


ASK = [{"role": "user", "content": "Describe a person as JSON."}]


def test_chat_follows_the_schema_and_ends_with_the_document(model: llaf.Model) -> None:
    stream = model.stream_chat(ASK, 60, json_schema=PERSON)
    text = stream.text()
    assert text == '{"name": "Mike", "age": 25, "role": "user", "tags": ["Mike", "MikeMike"]}'
    jsonschema.validate(json.loads(text), PERSON)
    assert stream.finish_reason == "stop"
    # Every token counted is the document's (the end of turn is not one).
    assert stream.completion_tokens == len(model.tokenizer.encode(text))


# Every document of it nests without end: the matcher gives up after a few tokens.
ENDLESS = {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}
ENDLESS_MESSAGE = ("the JSON schema cannot be followed: parser error: Too many items (limit 50000; ff_tokens); "
                   "try avoiding single-byte/short lexemes")


def test_a_schema_the_matcher_gives_up_on_is_the_schemas_error(model: llaf.Model) -> None:
    with pytest.raises(llaf.LlafError) as e:
        model.generate("Hi", 64, json_schema=ENDLESS)
    assert str(e.value) == ENDLESS_MESSAGE and getattr(e.value, "param", None) == "json_schema"


def test_json_mode_and_the_token_limit(model: llaf.Model) -> None:
    # Any JSON object, sampled; then the same request cut short by the token
    # limit: the text is the same beginning, and does not parse. (Seed 4 draws
    # an object that ends within 40 tokens and takes more than 5.)
    stream = model.stream("A JSON object describing a cat:", 40, json_schema=ANY_OBJECT, temperature=0.7, seed=4)
    text = stream.text()
    assert isinstance(json.loads(text), dict) and stream.finish_reason == "stop"
    cut = model.stream("A JSON object describing a cat:", 5, json_schema=ANY_OBJECT, temperature=0.7, seed=4)
    assert text.startswith(cut.text()) and cut.finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.text())


def test_the_command_line_takes_a_schema_file(tmp_path: Path) -> None:
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(PERSON))
    out = run_llaf("chat", "--backend", SERVER_BACKEND, "-n", "60", "--json-schema", str(schema),
                   stdin="Describe a person as JSON.\n")
    assert out.returncode == 0, out.stderr
    jsonschema.validate(json.loads(out.stdout), PERSON)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "foo"}')
    none = tmp_path / "none.json"
    for flags, message in [(["--json-schema", str(bad)],
                            f"llaf: the JSON schema in {bad} is not a usable JSON schema: Invalid type: foo\n"),
                           (["--json-schema", str(none)],
                            f"llaf: cannot read the JSON schema {none}: No such file or directory\n")]:
        out = run_llaf("generate", "Hi", *flags)
        assert (out.returncode, out.stderr) == (1, message)


# The server: 20 requests at once, each with its own schema, batched together.
SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    ("Describe a person as JSON.", PERSON),
    ("Give a city and its country as JSON.", {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 16}, "country": {"type": "string", "maxLength": 16}},
        "required": ["city", "country"]}),
    ("Is the sky blue? Answer as JSON.", {"type": "object", "properties": {
        "answer": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 24}},
        "required": ["answer", "reason"]}),
    ("List three colours as JSON.", {"type": "object", "properties": {
        "colours": {"type": "array", "items": {"enum": ["red", "green", "blue", "yellow", "black"]},
                    "minItems": 3, "maxItems": 3}}, "required": ["colours"]}),
    ("What is 7 times 6? Answer as JSON.", {"type": "object", "properties": {
        "result": {"type": "integer", "minimum": 0, "maximum": 1000}}, "required": ["result"]}),
    ("Rate the film Titanic as JSON.", {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 16}, "stars": {"type": "integer", "minimum": 1, "maximum": 5},
        "sentiment": {"enum": ["positive", "negative", "neutral"]}}, "required": ["title", "stars", "sentiment"]}),
    ("Give today's date as JSON.", {"type": "object", "properties": {
        "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}}, "required": ["date"]}),
    ("Describe a book as JSON.", {"type": "object", "properties": {
        "book": {"type": "object", "properties": {
            "title": {"type": "string", "maxLength": 24}, "year": {"type": "integer", "minimum": 1000,
                                                                   "maximum": 2100}},
            "required": ["title", "year"], "additionalProperties": False}},
        "required": ["book"], "additionalProperties": False}),
    ("Name an animal as JSON.", {"enum": ["cat", "dog", "horse"]}),
    ("Give two numbers as a JSON list.", {"type": "array", "items": {"type": "integer", "minimum": -99,
                                                                     "maximum": 99}, "minItems": 2, "maxItems": 2}),
]


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with no properties beyond those it names, as OpenAI's strict
    mode requires of every object (otherwise a model may go on adding
    properties until max_tokens cuts the document)."""
    out = {k: closed(v) if isinstance(v, dict) else v for k, v in schema.items()}
    if "properties" in out:
        out["properties"] = {k: closed(v) for k, v in schema["properties"].items()}
        out.setdefault("additionalProperties", False)
    return out


PROMPTS = [(f"{ask} (#{i})", closed(schema)) for i in range(2) for ask, schema in SCHEMAS]


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=900)


def test_twenty_prompts_through_the_openai_client_all_valid(client: openai.OpenAI) -> None:
    assert len(PROMPTS) == 20

    def ask(i: int) -> tuple[str, str | None]:
        prompt, schema = PROMPTS[i]
        # Greedy for half, sampled with a seed for the other half.
        out = client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": prompt}], max_tokens=64,
            temperature=0 if i < 10 else 0.8, seed=i,
            response_format={"type": "json_schema", "json_schema": {"name": f"s{i}", "schema": schema,
                                                                    "strict": True}})
        return out.choices[0].message.content or "", out.choices[0].finish_reason

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        answers = list(pool.map(ask, range(len(PROMPTS))))
    for (text, reason), (prompt, schema) in zip(answers, PROMPTS, strict=True):
        assert reason == "stop", (prompt, text)
        jsonschema.validate(json.loads(text), schema)


def test_streamed_and_on_completions(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL_ID, messages=ASK, max_tokens=64, temperature=0, stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(text), PERSON)
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Completions take response_format too (as vLLM's do); JSON mode cut short: "length".
    out = client.completions.create(model=MODEL_ID, prompt="A JSON object:", max_tokens=3, temperature=0,
                                    extra_body={"response_format": {"type": "json_object"}})
    assert out.choices[0].finish_reason == "length" and out.choices[0].text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.choices[0].text)


def test_a_bad_schema_is_a_400(client: openai.OpenAI) -> None:
    fmt: Any
    for fmt, message in [
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {
            "a": {"type": "integer", "minimum": 5, "maximum": 1}}, "required": ["a"]}}},
         "response_format.json_schema.schema is not a usable JSON schema: Unsatisfiable schema: required property "
         "'a' is unsatisfiable"),
        ({"type": "json_schema"}, "response_format of type json_schema needs its json_schema"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#"}}},
         "response_format.json_schema.schema is not a usable JSON schema: no document matches it (NoExtensionBias)"),
    ]:
        with pytest.raises(openai.BadRequestError, match=re.escape(message)) as e:
            client.chat.completions.create(model=MODEL_ID, messages=ASK, response_format=fmt)  # type: ignore[arg-type]
        assert e.value.status_code == 400 and e.value.param == "response_format"
    # found while generating: still the request's fault, in one line
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": ENDLESS}}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL_ID, messages=ASK, response_format=fmt)  # type: ignore[arg-type]
    assert e.value.status_code == 400 and e.value.param == "response_format"
    assert e.value.body["message"] == ENDLESS_MESSAGE  # type: ignore[index]
    # and the server goes on serving
    assert client.chat.completions.create(model=MODEL_ID, messages=ASK, max_tokens=2).choices[0].message.content
