"""Typed reports and their JSON/HTML renderings."""

from erasekit.report.schema import SCHEMA, MethodRow, Report, RunRecord, ScenarioInfo, ScenarioReport

__all__ = ["SCHEMA", "MethodRow", "Report", "RunRecord", "ScenarioInfo", "ScenarioReport"]
