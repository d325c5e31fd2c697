"""Typed reports for every family, one renderer (JSON + HTML) and one writer."""

from erasekit.report.concepts import ConceptInfo, ConceptReport, ConceptSource, ProbeRow
from erasekit.report.render import jsonable, to_html, to_json
from erasekit.report.selection import MeanStd, MethodSummary, SelectionBenchReport, SelectionReport
from erasekit.report.unlearning import (
    SCHEMA,
    DataInfo,
    ForgetInfo,
    MethodRow,
    OriginalScores,
    Report,
    RunRecord,
    ScenarioInfo,
    ScenarioReport,
)
from erasekit.report.writer import render_report, write_report

__all__ = [
    "SCHEMA",
    "ConceptInfo",
    "ConceptReport",
    "ConceptSource",
    "DataInfo",
    "ForgetInfo",
    "MeanStd",
    "MethodRow",
    "MethodSummary",
    "OriginalScores",
    "ProbeRow",
    "Report",
    "RunRecord",
    "ScenarioInfo",
    "ScenarioReport",
    "SelectionBenchReport",
    "SelectionReport",
    "jsonable",
    "render_report",
    "to_html",
    "to_json",
    "write_report",
]
