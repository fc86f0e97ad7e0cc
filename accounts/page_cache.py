"""Serving a rendered page from the cache: the part every page cache shares.

Each page cache (``planner.page_cache`` for the backlog, ``segments.page_cache`` for the segment
pages) decides what its key holds (what the page shows, checked against the database); this
serves it. Only GETs without pending flash messages are served from or put in the cache, and
only complete 200s are kept. The CSRF token is not kept: the stored page holds a placeholder
where the form tokens were, and a hit puts in a fresh token for the request's own CSRF secret
(``get_token``), as a render would, so no token is shared between requests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token

CSRF_PLACEHOLDER = b"\x1fcsrf-token\x1f"
_CSRF_INPUT = re.compile(rb'(name="csrfmiddlewaretoken" value=")([^"]*)(")')


def cacheable(request: HttpRequest) -> bool:
    """A GET with no flash message waiting (a page that shows one must be rendered)."""
    from django.contrib.messages import get_messages

    return request.method == "GET" and not len(get_messages(request))


def serve(request: HttpRequest, *, prefix: str, parts: Sequence[str],
          render: Callable[[], HttpResponse], timeout: int) -> HttpResponse:
    """The page kept under ``prefix`` + the hash of ``parts``, else ``render()`` (kept when a
    200); ``X-Page-Cache`` says which. The caller has checked ``cacheable``."""
    key = prefix + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    hit: Any = cache.get(key)
    if isinstance(hit, bytes):
        if CSRF_PLACEHOLDER in hit:
            hit = hit.replace(CSRF_PLACEHOLDER, get_token(request).encode())
        response = HttpResponse(hit, content_type="text/html; charset=utf-8")
        response["X-Page-Cache"] = "hit"
        return response
    response = render()
    if response.status_code == 200 and not response.streaming:
        cache.set(key, _CSRF_INPUT.sub(rb"\1" + CSRF_PLACEHOLDER + rb"\3", response.content),
                  timeout)
    response["X-Page-Cache"] = "miss"
    return response
