"""Request bodies the API refuses before any view runs, answered in JSON.

* **Nesting**: JSON whose arrays and objects nest deeper than ``JSON_MAX_DEPTH`` is a 400
  (``json_too_deep``). Python's parser recurses once per level, so 5,000 levels would raise
  ``RecursionError`` (a 500); the depth is counted first, by scanning the bytes, without
  recursion. A JSON text inside a form field (``mapping`` of an import) is held to the same
  limit by the API's form parsers.
* **Size**: an API body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (files excepted: multipart uploads
  are streamed to disk and have their own limit, ``MAX_UPLOAD_BYTES``) is a 413
  (``body_too_large``) naming the limit, instead of Django's HTML 400 page.

``security.middleware.RequestBodyLimitMiddleware`` checks /api/ requests before any view, and
the API's parsers (``security.parsers``, DRF's defaults) check again wherever a body is parsed;
``config.api``'s exception handler answers Django's ``RequestDataTooBig`` (form fields over the
limit, found while a multipart body is parsed) with the same 413.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from django.conf import settings

from .uploads import human_bytes

# A JSON string: a quote, then characters other than a quote or a backslash, or a backslash
# and the character it escapes, to the closing quote (written so it never backtracks).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STEP = np.zeros(256, dtype=np.int64)
_STEP[[0x5B, 0x7B]] = 1  # [ {
_STEP[[0x5D, 0x7D]] = -1  # ] }


def json_depth(data: bytes | str) -> int:
    """How deeply arrays and objects nest in a JSON text, without parsing it: no recursion,
    linear in its length. Brackets inside strings are not levels; the brackets of a malformed
    text are counted as written (the parser then refuses the text)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if b'"' in data:
        data = _STRING.sub(b'""', data)
    steps = _STEP[np.frombuffer(data, dtype=np.uint8)]
    steps = steps[steps != 0]
    return max(0, int(np.cumsum(steps).max())) if len(steps) else 0


def max_depth() -> int:
    return int(settings.JSON_MAX_DEPTH)


def too_deep(data: bytes | str) -> bool:
    """Whether the JSON text nests deeper than ``JSON_MAX_DEPTH``."""
    limit = max_depth()
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if data.count(b"[") + data.count(b"{") <= limit:  # cannot nest deeper: no scan
        return False
    return json_depth(data) > limit


def too_deep_answer() -> dict[str, str]:
    return {"detail": f"the JSON body is nested deeper than {max_depth()} levels (arrays and "
                      "objects inside one another)", "code": "json_too_deep"}


def too_large_answer(size: int | None = None, *, fields: bool = False) -> dict[str, str]:
    """The 413's body: how large the body was (when known) and the limit."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    limit_text = f"{human_bytes(limit)} ({limit:,} bytes)"
    if fields:
        detail = (f"the form fields of the request are over the limit of {limit_text}; send "
                  "files as file fields")
    elif size is not None:
        detail = (f"the request body has {size:,} bytes, over the limit of {limit_text}; send "
                  "files as multipart uploads")
    else:
        detail = f"the request body is over the limit of {limit_text}"
    return {"detail": detail, "code": "body_too_large"}


def loads(text: str | bytes) -> Any:
    """``json.loads`` for texts typed into a page or given on the command line, held to the
    same nesting limit as API bodies: a text nested too deeply is a ``ValueError`` (shown
    like any invalid JSON), never a ``RecursionError``."""
    if too_deep(text):
        raise ValueError(f"nested deeper than {max_depth()} levels")
    return json.loads(text)
