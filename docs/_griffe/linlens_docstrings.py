"""A griffe extension that reads linlens's zuko-style docstrings as mkdocstrings' Google parser expects them.

The sources stay as they are; only the text handed to the parser changes:
- ``Example:`` (zuko's title) becomes ``Examples:``, so the doctest renders as a code block and not as an
  admonition of Markdown text;
- Sphinx roles (``:func:`x```, ``:meth:`~a.b```, ``:class:``, …) become inline code, since Markdown has none.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|meth|class|attr|mod|data|obj|exc|ref):`~?([^`]+)`")


def rewrite(text: str) -> str:
    """The docstring text as the Google parser should see it."""
    text = _EXAMPLE.sub(r"\1Examples:", text)
    return _ROLE.sub(r"``\1``", text)


class LinlensDocstrings(griffe.Extension):
    """Rewrite every docstring once, when griffe creates the object."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
