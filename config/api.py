from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from events.ingest import ImportRejected
from jobs.services import BrokerUnavailable
from security import bodies


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus import rejections as 400 with code, message and where, and form
    fields over DATA_UPLOAD_MAX_MEMORY_SIZE as a 413 in JSON (not Django's HTML 400)."""
    if isinstance(exc, RequestDataTooBig):
        return Response(bodies.too_large_answer(fields=True), status=413)
    if isinstance(exc, ImportRejected):
        return Response({"error": exc.as_dict()}, status=400)
    if isinstance(exc, BrokerUnavailable):
        return Response({"detail": str(exc), "code": "broker_unavailable"}, status=503,
                        headers={"Retry-After": "30"})
    return drf_handler(exc, context)
