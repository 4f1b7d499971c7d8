"""The report's document model: block types, and their Markdown and self-contained HTML.

The HTML uses inline CSS only (no script, no request to the web) and either links images by
relative path, like the Markdown (the report in git: kilobytes beside the PNGs it shows), or
embeds them as base64 ``data:`` URIs (one file to send on its own).
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "Block",
    "Gallery",
    "Heading",
    "HtmlCell",
    "Image",
    "Table",
    "Text",
    "md_escape",
    "render_html",
    "render_markdown",
    "slug",
]


@dataclass
class Heading:
    """A section heading.

    Attributes:
        level: 1 for the title, 2 for a section (listed in the HTML table of contents), 3 below.
        text: Heading text (plain text).
        anchor: HTML ``id`` of the heading (see :func:`slug`).
    """

    level: int
    text: str
    anchor: str


@dataclass
class Text:
    """A paragraph or list.

    Attributes:
        markdown: Markdown source; copied as is into the Markdown, converted for the HTML
            (raw HTML in it is escaped).
    """

    markdown: str


@dataclass
class HtmlCell:
    """One cell of a :class:`Table`.

    Attributes:
        text: Plain-text content.
        strong: Whether the cell is emphasised (bold; class ``best`` in the HTML).
        attrs: Extra HTML attributes of the ``<td>`` (e.g. ``data-mean`` with the exact value).
    """

    text: str
    strong: bool = False
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Table:
    """A table.

    Attributes:
        header: Column titles.
        rows: Rows of cells, one per column.
        align_right: Indices of the numeric (right-aligned) columns.
        caption: HTML caption (not shown in the Markdown); ``""`` for none.
        row_classes: Row index -> HTML class of its ``<tr>``.
    """

    header: list[str]
    rows: list[list[HtmlCell]]
    align_right: set[int] = field(default_factory=set)
    caption: str = ""
    row_classes: dict[int, str] = field(default_factory=dict)


@dataclass
class Image:
    """A PNG figure with its caption.

    Attributes:
        path: The PNG file (linked from the Markdown; linked or embedded in the HTML).
        alt: Alternative text.
        caption: Caption shown under the image.
    """

    path: Path
    alt: str
    caption: str


@dataclass
class Gallery:
    """Figures shown side by side in the HTML (one after the other in the Markdown).

    Attributes:
        images: The figures, in order.
    """

    images: list[Image]


#: Anything a report is made of, in reading order.
Block = Heading | Text | Table | Image | Gallery


def slug(text: str) -> str:
    """HTML anchor for a heading.

    Args:
        text: Heading text.

    Returns:
        Lower-case ASCII letters and digits joined by ``-`` (``"section"`` if none are left).
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def md_escape(text: str) -> str:
    """Escape characters that break a Markdown table cell.

    Args:
        text: Cell text.

    Returns:
        The text with ``|`` escaped.
    """
    return text.replace("|", "\\|")


def render_markdown(blocks: Sequence[Block], md_dir: Path) -> str:
    """Render blocks as GitHub Markdown; images are linked by path relative to ``md_dir``.

    Args:
        blocks: The document.
        md_dir: Folder the Markdown file is written to.

    Returns:
        The Markdown text (blocks separated by blank lines, final newline).
    """
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Text):
            out.append(b.markdown)
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(md_escape(h) for h in b.header) + " |"]
            lines.append(
                "|"
                + "|".join("---:" if i in b.align_right else "---" for i in range(len(b.header)))
                + "|"
            )
            for row in b.rows:
                cells = [
                    f"**{md_escape(c.text)}**" if c.strong and c.text else md_escape(c.text)
                    for c in row
                ]
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
        else:
            for img in b.images if isinstance(b, Gallery) else [b]:
                rel = Path(os.path.relpath(img.path, md_dir)).as_posix()
                out.append(f"![{img.alt}]({rel})\n\n*{img.caption}*")
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:.86em}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #d0d0d0;padding:.3em .55em;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{background:#e4f4e4}tr:nth-child(even) td{background-color:#fafafa}
tr:nth-child(even) td.best{background:#dcefdc}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}nav ul{columns:2}code{background:#f3f3f3;padding:0 .2em}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:.8em}
.gallery figure{margin:0}tr.first-of-run td{border-top:3px solid #888}
"""


def _data_uri(path: Path) -> str:
    """Base64 ``data:`` URI of a PNG file."""
    if path.suffix.lower() != ".png":
        raise ValueError(f"only PNG images can be embedded, got {path}")
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _md_inline_html(text: str) -> str:
    """Markdown text to HTML with the ``markdown`` package (no raw HTML passes through)."""
    import markdown

    return markdown.markdown(html.escape(text, quote=False), extensions=[])


def _image_src(path: Path, link_from: Path | None) -> str:
    """The ``src`` of an image: a path relative to ``link_from`` (URL-quoted), or a data URI."""
    if link_from is None:
        return _data_uri(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"only PNG images can be shown, got {path}")
    rel = Path(os.path.relpath(path, link_from)).as_posix()
    return html.escape(quote(rel), quote=True)


def _figure(img: Image, link_from: Path | None = None) -> str:
    """A ``<figure>`` for one image (linked from ``link_from``, else embedded)."""
    alt = html.escape(img.alt, quote=True)
    return (
        f'<figure><img src="{_image_src(img.path, link_from)}" alt="{alt}">'
        f"<figcaption>{html.escape(img.caption)}</figcaption></figure>"
    )


def render_html(blocks: Sequence[Block], title: str, link_from: Path | None = None) -> str:
    """Render blocks as one HTML page with inline CSS.

    Args:
        blocks: The document; level-2 headings make the table of contents under the title.
        title: Page title (``<title>``).
        link_from: The folder the page will be written to: images are linked by their path
            relative to it. ``None``: images are embedded as data URIs (a self-contained page).

    Returns:
        The HTML page.

    Raises:
        ValueError: If an image is not a PNG.
    """
    toc = [b for b in blocks if isinstance(b, Heading) and b.level == 2]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f'<h{b.level} id="{b.anchor}">{html.escape(b.text)}</h{b.level}>')
            if b.level == 1 and toc:
                links = "".join(
                    f'<li><a href="#{h.anchor}">{html.escape(h.text)}</a></li>' for h in toc
                )
                parts.append(f"<nav><ul>{links}</ul></nav>")
        elif isinstance(b, Text):
            parts.append(_md_inline_html(b.markdown))
        elif isinstance(b, Table):
            rows = ["<table>"]
            if b.caption:
                rows.append(f"<caption>{html.escape(b.caption)}</caption>")
            rows.append(
                "<thead><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
                + "</tr></thead><tbody>"
            )
            for k, row in enumerate(b.rows):
                tds = []
                for i, c in enumerate(row):
                    classes = (["num"] if i in b.align_right else []) + (
                        ["best"] if c.strong else []
                    )
                    attrs = "".join(
                        f' {k}="{html.escape(v, quote=True)}"' for k, v in c.attrs.items()
                    )
                    cls = f' class="{" ".join(classes)}"' if classes else ""
                    text = html.escape(c.text)
                    tds.append(
                        f"<td{cls}{attrs}>{f'<strong>{text}</strong>' if c.strong else text}</td>"
                    )
                row_cls = b.row_classes.get(k)
                tr = f'<tr class="{row_cls}">' if row_cls else "<tr>"
                rows.append(tr + "".join(tds) + "</tr>")
            rows.append("</tbody></table>")
            parts.append("".join(rows))
        elif isinstance(b, Gallery):
            parts.append(
                '<div class="gallery">'
                + "".join(_figure(i, link_from) for i in b.images)
                + "</div>"
            )
        else:
            parts.append(_figure(b, link_from))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
