"""Wire models (PROTOCOL.md): they validate requests and generate the OpenAPI document."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Request(BaseModel):
    """A request body or query: strict types, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Response(BaseModel):
    """A response body as the server sends it."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(Response):
    code: str
    message: str
