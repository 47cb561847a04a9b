"""The request bodies of the routes, as pydantic models: strict types
(``"4"`` is not a number), every string checked to be valid Unicode as it
is read, and no unknown field: a field llaf does not implement (OpenAI's
``tools``, ``logit_bias``...) is a 400 naming it rather than silently
ignored (llaf/server/errors.py). A field is accepted by declaring it here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..tokenizer import unicode_problem


def _valid_unicode(text: str) -> str:
    problem = unicode_problem(text)
    if problem is not None:
        raise ValueError(f"the text {problem}")
    return text


# Every string of a request: a lone surrogate ("\\ud800" in JSON) is refused
# as it is read, rather than failing in the tokenizer or in the error
# message that echoes it.
Text = Annotated[str, AfterValidator(_valid_unicode)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_unset(cls, data: Any) -> Any:
        # Some clients send null for every option they leave at its default:
        # an unknown field is refused only when it has a value.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k in cls.model_fields}
        return data


# A token id; the vocabulary's bound is checked by the route, which knows the model.
TokenId = Annotated[int, Field(ge=0)]


class StreamOptions(_Strict):
    include_usage: bool = False


class JsonSchemaFormat(_Strict):
    """OpenAI's ``response_format.json_schema``; every schema is followed
    strictly (llaf/constraints.py), so `strict` changes nothing."""

    name: Text
    description: Text | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")  # None: any JSON object
    strict: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class Options(_Strict):
    """What both routes take: the model, sampling, length and streaming."""

    model: Text | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: Text | list[Text] | None = None
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    min_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: Text | None = None  # identifies the end user to OpenAI; nothing for llaf to do with it
    response_format: ResponseFormat | None = None


class CompletionRequest(Options):
    # A text, texts, token ids, or lists of token ids: one choice (n) per prompt.
    prompt: Text | list[Text] | list[TokenId] | list[list[TokenId]]
    logprobs: int | None = None  # 0-5 alternatives per token, as OpenAI's legacy completions


class TextPart(_Strict):
    type: Literal["text"]
    text: Text


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(Options):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    truncate: bool = False  # llaf's own: drop the oldest turns of a conversation too long for the context


class TokenizeRequest(_Strict):
    """llama.cpp's /tokenize."""

    content: Text
    with_pieces: bool = False


class DetokenizeRequest(_Strict):
    """llama.cpp's /detokenize."""

    tokens: list[TokenId]


class EmbeddingRequest(_Strict):
    """OpenAI's /v1/embeddings (``dimensions`` is not implemented: a 400)."""

    input: Text | list[Text] | list[TokenId] | list[list[TokenId]]
    model: Text | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: Text | None = None
