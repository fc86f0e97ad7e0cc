"""API request bodies refused before any view runs (``security.bodies``): over the size limit
a JSON 413, JSON nested deeper than the limit a JSON 400. Pages keep Django's own answers."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import bodies

API_PREFIX = "/api/"
WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


class RequestBodyLimitMiddleware:
    """Before sessions, authentication and the view: a body whose declared length is over
    DATA_UPLOAD_MAX_MEMORY_SIZE (multipart uploads excepted: their files are streamed to
    disk) is a 413; a JSON body nested deeper than JSON_MAX_DEPTH is a 400."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX) and request.method in WITH_BODY:
            refused = self.refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse | None:
        content_type = (request.content_type or "").lower()
        if content_type == "multipart/form-data":
            return None  # files stream to disk; Django limits the fields (config.api: 413)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return JsonResponse(bodies.too_large_answer(length), status=413)
        if _is_json(content_type) and length and bodies.too_deep(request.body):
            return JsonResponse(bodies.too_deep_answer(), status=400)
        return None
