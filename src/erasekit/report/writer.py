"""The one writer: a report's JSON and HTML, plus the command's other outputs, appear together or not at all."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from erasekit.core.io import write_files
from erasekit.report.render import to_html, to_json


def render_report(report: Any) -> dict[str, bytes]:
    """``report.json`` (or the report type's ``json_name``) and, where it has a template, ``report.html``."""
    files = {getattr(report, "json_name", "report.json"): to_json(report).encode()}
    if getattr(report, "template", None):
        files["report.html"] = to_html(report).encode()
    return files


def write_report(report: Any, out_dir: Path, extra: Mapping[str, bytes] | None = None) -> list[Path]:
    """Render everything in memory, then write it into ``out_dir`` through one staging folder.

    ``extra``: the command's other outputs (erased data, an eraser, a reduced table, a model …).
    Returns the written paths, the report's JSON first.
    """
    files = render_report(report)
    files.update(extra or {})
    return write_files(Path(out_dir), files)
