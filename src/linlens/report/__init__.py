"""Reports: atomic report folders (io), one self-contained HTML page (html), figures (figures*)."""

from linlens.report.html import Report, format_number
from linlens.report.io import (
    atomic_dir,
    atomic_write_bytes,
    atomic_write_text,
    check_destination,
    dump_json,
    json_safe,
)

__all__ = [
    "Report",
    "format_number",
    "atomic_dir",
    "check_destination",
    "atomic_write_bytes",
    "atomic_write_text",
    "dump_json",
    "json_safe",
]
