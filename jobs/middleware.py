"""Page requests that could not start their job because the task broker is down get a clear
503 page (the API answers its own 503 in ``config.api``)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .services import BrokerUnavailable


class BrokerUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, BrokerUnavailable) or request.path.startswith("/api/"):
            return None
        response = render(request, "broker_unavailable.html", {"message": str(exc),
                                                               "back": request.path},
                          status=503)
        response["Retry-After"] = "30"
        return response
