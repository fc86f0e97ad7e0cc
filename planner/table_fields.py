"""Form fields edited as tables: rows of cells posted as ``<name>-<row>-<column>``, turned into
the JSON the model stores, with errors on the row that caused them.

A table has a blank row to type into and an "Add row" button (``static/table_rows.js``; without
JavaScript, save and the form comes back with a fresh blank row). A post that carries the field
as one JSON text (``<name>=...``, as forms did before) is still read as that JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from security import bodies

MAX_ROWS = 1000


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text | number | select
    choices: tuple[tuple[str, str], ...] = ()
    placeholder: str = ""


class RowError(ValueError):
    """A row that cannot be read; ``column`` names the cell when one is at fault."""

    def __init__(self, message: str, column: str = "") -> None:
        super().__init__(message)
        self.column = column


class TableWidget(forms.Widget):
    """Renders rows as a table of inputs; reads them back as a list of {column: text}."""

    def __init__(self, columns: Sequence[Column], caption: str = "",
                 attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.columns = tuple(columns)
        self.caption = caption
        self.row_errors: dict[int, str] = {}

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        if name in data and f"{name}-0-{self.columns[0].key}" not in data:
            return data.get(name)  # one JSON text: the old form, and tests that post JSON
        rows = []
        for index in range(MAX_ROWS):
            cells = {c.key: data.get(f"{name}-{index}-{c.key}") for c in self.columns}
            if all(v is None for v in cells.values()):
                break
            rows.append({k: (v or "").strip() for k, v in cells.items()})
        return rows

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return name not in data and f"{name}-0-{self.columns[0].key}" not in data

    def _cell(self, name: str, index: int, column: Column, value: str) -> SafeString:
        cell_name = f"{name}-{index}-{column.key}"
        label = f"{column.label}, row {index + 1}"
        if column.kind == "select":
            options = format_html_join("", '<option value="{}"{}>{}</option>', (
                (key, mark_safe(" selected") if key == value else "", text)
                for key, text in (("", "—"), *column.choices)))
            return format_html('<td><select name="{}" aria-label="{}">{}</select></td>',
                               cell_name, label, options)
        kind = "number" if column.kind == "number" else "text"
        extra = mark_safe(' step="any"') if kind == "number" else ""
        return format_html('<td><input type="{}" name="{}" value="{}" aria-label="{}" '
                           'placeholder="{}"{}></td>', kind, cell_name, value, label,
                           column.placeholder, extra)

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None,
               renderer: Any = None) -> SafeString:
        rows = value if isinstance(value, list) else []
        rows = [r for r in rows if isinstance(r, dict)] + [{}]  # always one blank row
        head = format_html_join("", '<th scope="col">{}</th>',
                                ((c.label,) for c in self.columns))
        body = []
        for index, row in enumerate(rows):
            cells = mark_safe("".join(self._cell(name, index, c, str(row.get(c.key, "") or ""))
                                      for c in self.columns))
            error = self.row_errors.get(index)
            note = format_html('<td class="error" role="alert">{}</td>', error) if error \
                else mark_safe("<td></td>")
            css = ' class="row-error"' if error else ""
            body.append(format_html("<tr{}>{}{}</tr>", mark_safe(css), cells, note))
        element_id = (attrs or {}).get("id", f"id_{name}")
        caption = format_html("<caption>{}</caption>", self.caption) if self.caption else ""
        return format_html(
            '<div class="table-field" id="{}" data-name="{}"><table>{}<thead><tr>{}'
            '<th scope="col"><span class="sr-only">Row errors</span></th></tr></thead>'
            '<tbody>{}</tbody></table><button type="button" class="add-row" '
            'data-table-add="{}">Add row</button></div>',
            element_id, name, caption, head, mark_safe("".join(body)), name)


class TableField(forms.Field):
    """A table of rows turned into JSON by ``build(rows) -> value``; ``to_rows(value)`` gives
    the rows to show for a stored value. ``build`` records a message per bad row index in its
    ``errors`` dict; the widget shows it on that row and the field lists "row N: ..."."""

    def __init__(self, *, columns: Sequence[Column],
                 build: Callable[[list[dict[str, str]], dict[int, str]], Any],
                 to_rows: Callable[[Any], list[dict[str, str]]], json_type: type,
                 caption: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(widget=TableWidget(columns, caption), **kwargs)
        self.build = build
        self.to_rows = to_rows
        self.json_type = json_type

    def prepare_value(self, value: Any) -> Any:
        """Rows to show: the posted rows when the form comes back, else the stored value's."""
        if isinstance(value, str):
            try:
                value = bodies.loads(value) if value.strip() else None
            except ValueError:
                return []
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            return value
        return self.to_rows(value) if value not in (None, "") else []

    def clean(self, value: Any) -> Any:
        widget: TableWidget = self.widget  # type: ignore[assignment]
        widget.row_errors = {}
        if isinstance(value, str) and self.json_type is list \
                and not value.strip().startswith("["):
            # A list as comma-separated text (the quarters field's old form).
            value = [{self.widget.columns[0].key: part}  # type: ignore[attr-defined]
                     for part in value.split(",") if part.strip()]
        if isinstance(value, str):  # the JSON text form
            raw = value.strip() or ("[]" if self.json_type is list else "{}")
            try:
                parsed = bodies.loads(raw)
            except ValueError as exc:
                raise forms.ValidationError(f"not valid JSON: {exc}") from None
            if not isinstance(parsed, self.json_type):
                raise forms.ValidationError("give a JSON "
                                            + ("list" if self.json_type is list else "object"))
            return parsed
        value = [{k: str(v).strip() for k, v in r.items()} for r in (value or [])
                 if isinstance(r, dict)]
        rows = [r for r in value if any(r.values())]
        positions = [k for k, r in enumerate(value) if any(r.values())]
        errors: dict[int, str] = {}
        result = self.build(rows, errors)
        if errors:
            widget.row_errors = {positions[k]: msg for k, msg in errors.items()}
            raise forms.ValidationError([f"row {positions[k] + 1}: {msg}"
                                         for k, msg in sorted(errors.items())])
        return result


def number(text: str, what: str) -> float:
    """A finite number from a cell, or RowError naming the column."""
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RowError(f"{what}: give a finite number")
    return value
