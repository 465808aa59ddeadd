"""Markdown and table artifacts as HTML that cannot run a script.

markdown-it-py renders with raw HTML off (a `<script>` in the source stays text);
nh3 then sanitises the result anyway, allowing only the tags markdown produces and
links to http(s)/mailto, so a `javascript:` link or an `onerror=` never survives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "img", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"style"},
    "td": {"style"},
}
_URL_SCHEMES = {"http", "https", "mailto"}


@cache
def _parser() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": False, "linkify": False})
        .enable("table")
        .enable("strikethrough")
    )


def render_markdown(source: str) -> Markup:
    """`source` as sanitised HTML."""
    html = _parser().render(source)
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )
    return Markup(cleaned)


def table_rows(data: Any) -> tuple[list[str], list[list[Any]]]:
    """A table artifact's header and rows: a list of records, a list of rows, or columns.

    Cells stay values; the template escapes them as text.
    """
    if isinstance(data, Mapping):
        # Columns: {"city": [...], "temp": [...]}
        headers = [str(key) for key in data]
        columns = [
            value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
            for value in data.values()
        ]
        length = max((len(column) for column in columns), default=0)
        rows = [[column[i] if i < len(column) else "" for column in columns] for i in range(length)]
        return headers, rows
    if isinstance(data, Sequence) and not isinstance(data, str):
        records = list(data)
        if records and all(isinstance(record, Mapping) for record in records):
            headers = list(dict.fromkeys(str(key) for record in records for key in record))
            return headers, [[record.get(key, "") for key in headers] for record in records]
        rows = [
            list(row) if isinstance(row, Sequence) and not isinstance(row, str) else [row]
            for row in records
        ]
        return [], rows
    return [], [[data]]


def cell(value: Any) -> Markup:
    """A table cell's text, escaped (numbers and strings as they are, the rest as JSON-ish)."""
    if value is None:
        return Markup("")
    return escape(value if isinstance(value, str) else str(value))
