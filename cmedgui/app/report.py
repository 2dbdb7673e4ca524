"""The one-page solve report: an HTML file with the figures embedded (pattern, 3D view, and a
contour slice of the difference map where the solution has one) and the result tables."""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

import pyqtgraph.exporters

from cmedgui import __version__
from cmedgui.app.figures import png_bytes, rgba_image
from cmedgui.app.slicing import slice_drawing
from cmedgui.app.widgets.results_panel import SITE_COLUMNS, result_rows, site_cells
from model.errors import InputError
from model.files import atomic_write
from model.pattern import Pattern
from model.result import SolveResult

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}
th{background:#eee}td.key{text-align:left;font-weight:bold}img{max-width:100%;border:1px solid #ddd}
.figures{display:flex;gap:1em}.figures div{flex:1}"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def slice_png(density, hkl=(1, 1, 0), offset: float = 0.0, width_px: int = 900) -> tuple[bytes, str]:
    """A contour slice of ``density`` on (hkl) at ``offset``, drawn as the window draws it, as PNG;
    and its caption."""
    from cmedgui.app.widgets.slice_view import SliceView

    view = SliceView()
    view.resize(width_px, int(width_px * 0.8))
    lines, frame, signed, atoms, caption = slice_drawing(density, hkl, offset)
    view.show_slice(lines, frame, signed, atoms, caption)
    exporter = pyqtgraph.exporters.ImageExporter(view.plot.plotItem)
    exporter.parameters()["width"] = width_px
    png = png_bytes(exporter.export(toBytes=True))
    view.deleteLater()
    return png, caption


def write_report(path: str | Path, result: SolveResult, pattern: Pattern | None, pattern_widget,
                 density_view, difference=None, plane=((1, 1, 0), 0.0)) -> Path:
    """``difference``: the difference map (model.density.Density) whose slice on ``plane``
    ((hkl), height) the report shows; None: the solution's own, if it has one."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(path, "the solve report is written as HTML (.html)")
    exporter = pyqtgraph.exporters.ImageExporter(pattern_widget.ci)
    exporter.parameters()["width"] = 1200
    pattern_png = png_bytes(exporter.export(toBytes=True))
    density_png = png_bytes(rgba_image(density_view.render()))
    summary = "".join(f'<tr><td class="key">{html.escape(k)}</td><td style="text-align:left">{html.escape(v)}'
                      f"</td></tr>" for k, v in result_rows(result).items())
    header = "".join(f"<th>{html.escape(c)}</th>" for c in SITE_COLUMNS)
    sites = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                    for row in site_cells(result))
    difference = difference if difference is not None else result.maps.get("difference")
    figure = ""
    if difference is not None:
        png, caption = slice_png(difference, *plane)
        figure = f"<h2>Difference map slice</h2>{_img(png, 'difference map slice')}<p>{html.escape(caption)}</p>"
    source = html.escape(pattern.provenance.path or pattern.name) if pattern is not None else "—"
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>cmedgui solve report</title><style>{STYLE}</style></head>
<body><h1>Solve report: {html.escape(result.space_group)}</h1>
<p>Pattern: {source}<br>Written {time.strftime('%Y-%m-%d %H:%M')} by cmedgui {__version__}</p>
<div class="figures"><div><h2>Observed and fitted pattern</h2>{_img(pattern_png, "pattern")}</div>
<div><h2>Electron density</h2>{_img(density_png, "density")}</div></div>
{figure}
<h2>Result</h2><table>{summary}</table>
<h2>Sites</h2><table><tr>{header}</tr>{sites}</table>
</body></html>
"""
    with atomic_write(path, encoding="utf-8") as out:
        out.write(page)
    return path
