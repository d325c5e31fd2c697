"""Typed reports and their JSON/HTML renderings."""

from erasekit.report.schema import SCHEMA, MethodRow, Report, RunRecord, ScenarioInfo, ScenarioReport

__all__ = ["SCHEMA", "MethodRow", "Report", "RunRecord", "ScenarioInfo", "ScenarioReport"]
from erasekit.report.render import to_html, to_json, write_report  # noqa: E402

__all__ += ["to_html", "to_json", "write_report"]
