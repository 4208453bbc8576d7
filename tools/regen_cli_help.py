"""Regenerate the `--help` blocks of docs/guide/cli.md from the CLI (run after changing a command's options).

Every ```text block that holds "Usage: linlens …" is replaced by that command's current help, at the block's
own width. Usage: python tools/regen_cli_help.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "cli.md"


def _regen(m: re.Match) -> str:
    body = m.group(2)
    usage = re.search(r"Usage: linlens ?(.*?) \[OPTIONS\]", body)
    if not usage:
        return m.group(0)
    width = max(len(line) for line in body.splitlines())
    env = dict(os.environ, COLUMNS=str(width), TERM="dumb", NO_COLOR="1")
    run = "from linlens.cli import app; app(prog_name='linlens')"
    out = subprocess.run([sys.executable, "-c", run, *usage.group(1).split(), "--help"], capture_output=True,
                         text=True, env=env, check=True).stdout
    lines = [line.rstrip() for line in out.splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return m.group(1) + "\n".join(lines) + m.group(3)


def main() -> None:
    page = PAGE.read_text(encoding="utf-8")
    new = re.sub(r"(```text\n)(.*?)(\n```)", _regen, page, flags=re.S)
    PAGE.write_text(new, encoding="utf-8")
    print(f"{PAGE}: {'updated' if new != page else 'unchanged'}")


if __name__ == "__main__":
    main()
