"""A report: metrics, text, tables and figures, written as a folder with ``metrics.json``, one
self-contained ``report.html`` (figures embedded as base64 PNG; no network needed) and the PNGs.

Example:
    >>> import tempfile, pathlib
    >>> rep = Report("demo")
    >>> rep.add_text("Hello.")
    >>> rep.add_table(["a", "b"], [[1, 2.5]])
    >>> rep.metrics["x"] = 1.0
    >>> out = rep.write(pathlib.Path(tempfile.mkdtemp()) / "r")
    >>> sorted(p.name for p in out.iterdir())
    ['.linlens-report', 'metrics.json', 'report.html']
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from linlens.report.io import atomic_dir, dump_json, split_arrays

__all__ = ["Report", "format_number"]


def format_number(v: Any, digits: int = 4) -> str:
    """Short human form of a number (``1.23e-05``, ``0.9812``, ``42``); other values via ``str``.

    Example:
        >>> format_number(1.234567e-5), format_number(0.98123456), format_number(42), format_number(None)
        ('1.235e-05', '0.9812', '42', 'None')
    """
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f:
        return "nan"
    if f == 0:
        return "0"
    if abs(f) >= 1e5 or abs(f) < 1e-3:
        return f"{f:.{digits - 1}e}"
    return f"{f:.{digits}g}"


@dataclass
class _Block:
    kind: str
    payload: Any


@dataclass
class Report:
    """Collects a report's content; :meth:`write` produces the folder atomically.

    Arguments:
        title: the page title.

    Example:
        >>> import tempfile
        >>> rep = Report("Example")
        >>> rep.add_table(["name", "R²"], [["network", 0.98123]])
        >>> rep.metrics = {"r2": 0.98123}
        >>> out = rep.write(Path(tempfile.mkdtemp()) / "report")
        >>> sorted(p.name for p in out.iterdir()), "0.9812" in (out / "report.html").read_text(encoding="utf-8")
        (['.linlens-report', 'metrics.json', 'report.html'], True)
    """

    title: str
    metrics: dict[str, Any] = field(default_factory=dict)
    _blocks: list[_Block] = field(default_factory=list)
    _figures: dict[str, bytes] = field(default_factory=dict)
    _arrays: dict[str, Any] = field(default_factory=dict)
    answer: list[str] = field(default_factory=list)
    answer_next: str = ""

    def add_answer(self, line: str) -> None:
        """A line of the short answer that opens the page (the verdict and the numbers that decide it); keep the
        answer to about five lines with :attr:`answer_next`, the line that says what to look at next."""
        self.answer.append(line)

    def add_array(self, name: str, array: Any) -> None:
        """Save ``array`` as ``name``.npy beside metrics.json (matrices too large for JSON: d × d operators)."""
        stem = os.path.basename(name).removesuffix(".npy")
        self._arrays[stem + ".npy"] = np.asarray(array)

    def add_heading(self, text: str) -> None:
        self._blocks.append(_Block("h2", text))

    def add_text(self, text: str) -> None:
        """A paragraph (plain text; blank lines split paragraphs)."""
        self._blocks.append(_Block("p", text))

    def add_notes(self, notes: list[str], reference_status: dict[str, str] | None = None,
                  resampling: str = "") -> None:
        """The "Notes: …" paragraph (each note closed by a full stop) and the "References: name: how it was
        obtained; … ." paragraph followed by ``resampling`` (what the intervals resample), each only when there is
        something to say — the one wording of every study report (the inverse study, the tracker).

        Example:
            >>> rep = Report("r"); rep.add_notes(["σ estimated", "d = 3."], {"C_data": "estimated"}, "Resampled.")
            >>> [b.payload for b in rep._blocks]
            ['Notes: σ estimated. d = 3.', 'References: C_data: estimated. Resampled.']
            >>> rep.add_notes([], {}); len(rep._blocks)
            2
        """
        if notes:
            self.add_text("Notes: " + " ".join(n if n.endswith(".") else n + "." for n in notes))
        if reference_status:
            self.add_text("References: " + "; ".join(f"{k}: {v}" for k, v in reference_status.items()) + "."
                          + (f" {resampling}" if resampling else ""))

    def add_table(self, header: list[str], rows: list[list[Any]], caption: str | None = None) -> None:
        self._blocks.append(_Block("table", (list(header), [list(r) for r in rows], caption)))

    def add_figure(self, fig: Any, name: str, caption: str = "", dpi: int = 110) -> None:
        """Embed a matplotlib figure and save it as ``name``.png; the figure is closed afterwards."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        stem = os.path.basename(name).removesuffix(".png")
        self._figures[stem + ".png"] = buf.getvalue()
        self._blocks.append(_Block("fig", (stem + ".png", caption)))

    def to_html(self) -> str:
        esc = html.escape
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{esc(self.title)}</title>",
            "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;"
            "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
            "figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}img{max-width:100%}"
            ".answer{border:2px solid #3a6;border-radius:6px;padding:.4em 1em;background:#f4fbf6}"
            ".answer h2{margin:.3em 0}.answer ul{margin:.3em 0;padding-left:1.2em}</style>",
            f"</head><body><h1>{esc(self.title)}</h1>",
        ]
        if self.answer or self.answer_next:
            items = [f"<li>{esc(a)}</li>" for a in self.answer]
            if self.answer_next:
                items.append(f"<li><b>Look next:</b> {esc(self.answer_next)}</li>")
            parts.append("<section class='answer'><h2>The answer</h2><ul>" + "".join(items) + "</ul></section>")
        for b in self._blocks:
            if b.kind == "h2":
                parts.append(f"<h2>{esc(b.payload)}</h2>")
            elif b.kind == "p":
                for para in str(b.payload).split("\n\n"):
                    parts.append(f"<p>{esc(para)}</p>")
            elif b.kind == "table":
                header, rows, caption = b.payload
                parts.append("<table>")
                if caption:
                    parts.append(f"<caption>{esc(caption)}</caption>")
                parts.append("<tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in header) + "</tr>")
                for r in rows:
                    parts.append("<tr>" + "".join(f"<td>{esc(format_number(c))}</td>" for c in r) + "</tr>")
                parts.append("</table>")
            elif b.kind == "fig":
                fname, caption = b.payload
                data = base64.b64encode(self._figures[fname]).decode("ascii")
                parts.append(
                    f"<figure><img alt='{esc(fname)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{esc(caption)}</figcaption></figure>"
                )
        parts.append("<h2>All metrics</h2><p>Every number is in <code>metrics.json</code>.</p></body></html>")
        return "\n".join(parts)

    def write(self, out: str | os.PathLike, force: bool = False) -> Path:
        """Write ``metrics.json``, ``report.html`` and the PNGs to ``out`` atomically; returns the path."""
        metrics, arrays = split_arrays(self.metrics)  # large arrays go to .npy beside metrics.json
        with atomic_dir(out, force=force) as tmp:
            (tmp / "metrics.json").write_text(dump_json(metrics), encoding="utf-8")
            for fname, arr in arrays.items():
                np.save(tmp / fname, arr, allow_pickle=False)
            (tmp / "report.html").write_text(self.to_html(), encoding="utf-8")
            for fname, data in self._figures.items():
                (tmp / fname).write_bytes(data)
            for fname, arr in self._arrays.items():
                np.save(tmp / fname, arr, allow_pickle=False)
        return Path(out)
