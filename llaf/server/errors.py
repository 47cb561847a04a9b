"""Refusals in OpenAI's error body, ``{"error": {"message", "type", "param",
"code"}}``, which the openai package and other clients read; pydantic's
validation errors told in it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class APIError(Exception):
    """A request the server refuses, with its HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def shutting_down() -> APIError:
    return APIError(503, "the server is shutting down", type="server_error")


def loading() -> APIError:
    return APIError(503, "the model is still loading; /health says when it is ready", type="server_error",
                    code="model_loading")


def _error_param(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_error(exc: RequestValidationError) -> APIError:
    """The first telling failure of a request body, as a 400 naming its field."""
    errors = exc.errors()
    if not errors:
        return APIError(400, "the request is invalid")
    # An unknown field is the most telling (llaf does not implement it);
    # else, as a value of a union type (str | list[TextPart]) fails once per
    # member, the deepest failure.
    err = max(errors, key=lambda e: (e.get("type") == "extra_forbidden", len(e.get("loc", ()))))
    loc = list(err.get("loc", ()))
    if loc and loc[0] == "body":
        loc = loc[1:]
    if err.get("type") == "json_invalid":
        detail = (err.get("ctx") or {}).get("error", err.get("msg", ""))
        return APIError(400, f"the request body is not valid JSON ({detail})")
    if not loc:
        return APIError(400, "the request body must be a JSON object")
    # pydantic puts the union member's name in the location (a validator's
    # too: "function-after[...]"): leave it out.
    param = _error_param([p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "list")))])
    if err.get("type") == "missing":
        return APIError(400, f"{param}: a required field is missing", param=param)
    if err.get("type") == "extra_forbidden":
        return APIError(400, f"{param}: llaf does not support this field", param=param)
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return APIError(400, f"{param}: {message}", param=param)
