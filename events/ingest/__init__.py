"""Import event and user files into the event store. Pure: no Django.

The pipeline, one module a step (each imports only from the ones above it):

* ``errors``, ``options``, ``report``: ``ImportRejected``, ``ImportOptions`` and the quality
  report (``Problems``: row problems counted, with up to five sample rows each);
  ``arrow_text``: vectorized helpers for text columns.
* ``formats``: size and format checks, UTF-8 and NUL checks, reading CSV, Parquet and JSON
  Lines (Segment, Mixpanel and Amplitude exports) into one frame (``read_table``).
* ``columns``: which column is the user, the event, the time... (mapping, then aliases).
* ``timestamps``: timestamps of any spelling to UTC, flagging naive and ambiguous ones.
* ``validate``: row checks into the quality report; ``parse_events`` and ``parse_users``.
* ``textcodes``, ``dedup``: text as integer codes; sorting and finding repeated rows.
* ``merge``: ``merge_into_store``, de-duplicating against the stored rows and publishing one
  new version of the dataset, exactly once per import.

Two kinds of failure:

* ``ImportRejected``: the file cannot be imported at all (wrong format, bad encoding, missing
  required column, empty, over the size limit, no valid row). Nothing is written.
* row problems: counted in the quality report with up to five sample rows (line numbers), and
  the offending rows are left out; everything else is imported.
"""

from .columns import EVENT_ALIASES, REQUIRED_EVENT_COLUMNS, USER_ALIASES, resolve_columns
from .errors import ImportRejected
from .formats import (
    BINARY_SIGNATURES,
    CSV_BLOCK_SIZE,
    IGNORED_JSON_KEYS,
    SCAN_CHUNK,
    UNICODE_BOMS,
    Layout,
    TextShape,
    check_file,
    detect_format,
    read_table,
    summarize_text,
)
from .merge import DEDUP_KEY, PARALLEL_ROWS, MergeResult, merge_into_store
from .options import ImportOptions
from .report import SAMPLE_LIMIT, Problems
from .textcodes import FACTORIZE_BUCKETS_FROM, MAX_KEY_WORDS
from .timestamps import TS_CHUNK, parse_timestamps
from .validate import (
    FUTURE_TOLERANCE,
    MAX_FIELD_BYTES,
    MIN_TIMESTAMP,
    NULL_USER_IDS,
    ParsedEvents,
    ParsedUsers,
    anomalous_days,
    parse_amounts,
    parse_events,
    parse_users,
)

__all__ = [
    "BINARY_SIGNATURES", "CSV_BLOCK_SIZE", "DEDUP_KEY", "EVENT_ALIASES", "FACTORIZE_BUCKETS_FROM",
    "FUTURE_TOLERANCE", "IGNORED_JSON_KEYS", "MAX_FIELD_BYTES", "MAX_KEY_WORDS", "MIN_TIMESTAMP",
    "NULL_USER_IDS", "PARALLEL_ROWS", "REQUIRED_EVENT_COLUMNS", "SAMPLE_LIMIT", "SCAN_CHUNK",
    "TS_CHUNK", "UNICODE_BOMS", "USER_ALIASES", "ImportOptions", "ImportRejected", "Layout",
    "MergeResult", "ParsedEvents", "ParsedUsers", "Problems", "TextShape", "anomalous_days",
    "check_file", "detect_format", "merge_into_store", "parse_amounts", "parse_events",
    "parse_timestamps", "parse_users", "read_table", "resolve_columns", "summarize_text",
]
