from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from . import context

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AuditContextMiddleware:
    """Makes the request (and so its user, read lazily) the actor of the changes it causes."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        incoming = request.headers.get("X-Request-ID", "")
        request.audit_request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        with context.request_scope(request):
            response = self.get_response(request)
        response.headers.setdefault("X-Request-ID", request.audit_request_id)
        return response
