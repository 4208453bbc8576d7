"""linlens.report.html: what the page says — user text escaped (a name or a message cannot inject markup), the
answer box first, numbers by format_number's rule, and the Notes/References paragraphs (Report.add_notes) — checked
on the written report.html with the standard library's HTML parser as the independent reader."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from linlens.report import Report
from linlens.report.html import format_number


class _Reader(HTMLParser):
    """Tags seen and the text of every element, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def _read(rep: Report, tmp_path) -> _Reader:
    out = rep.write(tmp_path / "report")
    r = _Reader()
    r.feed((out / "report.html").read_text(encoding="utf-8"))
    return r


def test_user_text_is_escaped_everywhere(tmp_path):
    evil = "<script>alert(1)</script> & <b>"
    rep = Report(evil)
    rep.add_answer(evil)
    rep.add_heading(evil)
    rep.add_text(evil)
    rep.add_table([evil], [[evil]], caption=evil)
    r = _read(rep, tmp_path)
    assert "script" not in r.tags and "b" not in r.tags  # no tag from the user's text reached the page
    assert r.text.count(evil) >= 6  # …and the text itself is shown as written (title, h1, answer, h2, p, table)


def test_the_answer_box_comes_first_and_says_what_to_look_at_next(tmp_path):
    rep = Report("t")
    rep.add_text("body paragraph")
    rep.add_answer("first line")
    rep.answer_next = "the table"
    r = _read(rep, tmp_path)
    i = r.text.index("The answer")
    assert r.text[i + 1:i + 4] == ["first line", "Look next:", "the table"]
    assert r.text.index("body paragraph") > i


@pytest.mark.parametrize("value,text", [(0.98123, "0.9812"), (12345.678, "1.235e+04"), (2e-4, "2.000e-04"),
                                        (0.0, "0"), (7, "7"), (float("nan"), "nan"), (True, "True"), ("x", "x")])
def test_format_number_rule(value, text):
    assert format_number(value) == text


def test_table_cells_use_format_number(tmp_path):
    rep = Report("t")
    rep.add_table(["name", "R²"], [["net", 0.98123]])
    assert "0.9812" in _read(rep, tmp_path).text


def test_notes_and_references_paragraphs(tmp_path):
    rep = Report("t")
    rep.add_notes(["σ estimated", "d = 3."], {"C_data": "estimated from 200 pairs", "A⁻¹": "fixed"},
                  "Every interval resamples the rows.")
    rep.add_notes([], {}, "never shown")
    r = _read(rep, tmp_path)
    assert "Notes: σ estimated. d = 3." in r.text
    assert "References: C_data: estimated from 200 pairs; A⁻¹: fixed. Every interval resamples the rows." in r.text
    assert not any("never shown" in t for t in r.text)
