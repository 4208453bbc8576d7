"""mkdocs hook: formulas become MathML at build time, so pages render maths offline, from disk, without JavaScript.

pymdownx.arithmatex (generic mode) marks ``$...$`` / ``$$...$$`` in the Markdown as
``<span class="arithmatex">\\(...\\)</span>`` and ``<div class="arithmatex">\\[...\\]</div>``; this hook replaces
each with the MathML that latex2mathml makes of it, which every current browser draws natively. A formula that
latex2mathml cannot read fails the build (the docs build is strict), naming the page and the formula.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.DOTALL)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.DOTALL)


def _mathml(tex: str, display: str, page: object) -> str:
    source = html.unescape(tex).strip()
    try:
        out = convert(source, display=display)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a broken page
        raise ValueError(f"{page}: cannot render the formula {source!r} ({type(exc).__name__}: {exc})") from None
    # keep the TeX for screen readers' fallbacks and for copying
    return out.replace("<math ", f'<math alttext="{html.escape(source, quote=True)}" ', 1)


def on_page_content(content: str, page: object, **kwargs: object) -> str:
    content = _BLOCK.sub(lambda m: f'<div class="math">{_mathml(m.group(1), "block", page)}</div>', content)
    return _INLINE.sub(lambda m: _mathml(m.group(1), "inline", page), content)
