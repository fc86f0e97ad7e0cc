"""The API's parsers (DRF's defaults, set in REST_FRAMEWORK): DRF's own, with the nesting
limit of ``security.bodies`` checked before any JSON is parsed, a JSON body and a JSON text
inside a form field alike (the middleware checks /api/ bodies before this; these hold for any
DRF view however it is reached)."""

from __future__ import annotations

import io
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import APIException

from . import bodies


class JsonTooDeep(APIException):
    status_code = 400
    default_code = "json_too_deep"

    def __init__(self) -> None:
        super().__init__(bodies.too_deep_answer())


def _check_fields(data: Any) -> None:
    """Form fields holding JSON (they start with [ or {) within the nesting limit."""
    for _, value in data.lists() if hasattr(data, "lists") else data.items():
        for item in value if isinstance(value, list) else [value]:
            if (isinstance(item, str) and item.lstrip()[:1] in ("[", "{")
                    and bodies.too_deep(item)):
                raise JsonTooDeep


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        data = stream.read() if stream is not None else b""
        if bodies.too_deep(data):
            raise JsonTooDeep
        return super().parse(io.BytesIO(data), media_type, parser_context)


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        _check_fields(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        _check_fields(parsed.data)
        return parsed
