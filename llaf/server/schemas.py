"""The request bodies of the completion routes, as pydantic models: strict
types (``"4"`` is not a number), unknown fields ignored as OpenAI's API
does, and every string checked to be valid Unicode as it is read."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(strict=True, extra="ignore")


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
    response_format: ResponseFormat | None = None


class CompletionRequest(Options):
    prompt: Text | list[Text]


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
    truncate: bool = False  # llaf's own: drop the oldest turns of a conversation too long for the context
