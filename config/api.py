from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from events.ingest import ImportRejected
from jobs.services import BrokerUnavailable


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus import rejections as 400 with code, message and where."""
    if isinstance(exc, ImportRejected):
        return Response({"error": exc.as_dict()}, status=400)
    if isinstance(exc, BrokerUnavailable):
        return Response({"detail": str(exc), "code": "broker_unavailable"}, status=503,
                        headers={"Retry-After": "30"})
    return drf_handler(exc, context)
