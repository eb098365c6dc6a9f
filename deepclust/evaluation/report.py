"""The evaluation report: per-mixture rows, their summary statistics, the table, and the files.

A report folder holds ``per_mixture.csv`` (one row per scored mixture: means
over sources, then per-source values joined by ``;``) and ``summary.json``
(mean, median and count of every metric, overall and per number of speakers,
the skipped mixtures and how the scores were computed). Both are written
atomically, so an interrupted run never leaves a half-written report.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic
from .metrics import METRICS

CSV_NAME = "per_mixture.csv"
SUMMARY_NAME = "summary.json"
CSV_COLUMNS = ("id", "num_speakers", "estimated_speakers") + METRICS
CSV_SOURCE_COLUMNS = tuple(f"{m}_sources" for m in METRICS) + ("permutation", "si_sdr_permutation", "warnings")
METRIC_NAMES = {"sdr": "SDR", "sir": "SIR", "sar": "SAR", "sdri": "SDRi", "si_sdr": "SI-SDR", "si_sdri": "SI-SDRi",
                "stoi": "STOI"}


@dataclass
class Report:
    """What an evaluation found: one row per scored mixture, the summary, and where they were written."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    out: Path | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)

    def table(self) -> str:
        return format_table(self.summary)


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ";".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in value)
    return f"{value:.4f}" if isinstance(value, float) else value


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """One row per mixture: means over sources, then per-source values joined by ';' (atomically)."""
    present = [c for c in CSV_COLUMNS if c in ("id", "num_speakers") or any(c in r for r in rows)]
    extra = [c for c in CSV_SOURCE_COLUMNS if any(c in r for r in rows)] if rows else []
    with atomic.replacing(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(present + extra)
        for r in rows:
            writer.writerow([_cell(r.get(c, "")) for c in present] + [_cell(r.get(c, "")) for c in extra])
    return Path(path)


def _stats(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    stats = {}
    for metric in METRICS:
        values = np.array([r[metric] for r in rows if metric in r], np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            stats[metric] = {"mean": float(np.mean(values)), "median": float(np.median(values)), "count": int(values.size)}
    return stats


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, median and count of every metric, overall and per number of speakers."""
    counts = sorted({r["num_speakers"] for r in rows})
    return {
        "overall": _stats(rows),
        "by_num_speakers": {str(k): _stats([r for r in rows if r["num_speakers"] == k]) for k in counts},
    }


def speaker_count(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How often ``estimated_speakers`` equals ``num_speakers``: overall and per number of speakers."""
    hits = [r.get("estimated_speakers") == r["num_speakers"] for r in rows]
    by_k = {str(k): float(np.mean([h for h, r in zip(hits, rows) if r["num_speakers"] == k]))
            for k in sorted({r["num_speakers"] for r in rows})}
    return {"accuracy": float(np.mean(hits)) if hits else None, "count": len(hits), "by_num_speakers": by_k}


def format_table(summary: dict[str, Any]) -> str:
    """Mean and median of every metric reported, overall and per number of speakers, as text."""
    groups = [("all", summary.get("overall", {}))]
    groups += [(f"{k} spk", s) for k, s in summary.get("by_num_speakers", {}).items()]
    metrics = [m for m in METRICS if any(m in s for _, s in groups)]
    header = f"{'':<8}{'':<7}{'count':>6}" + "".join(f"{METRIC_NAMES[m]:>9}" for m in metrics)
    lines = [header]
    for label, stats in groups:
        count = max((s["count"] for s in stats.values()), default=0)
        for i, stat in enumerate(("mean", "median")):
            cells = "".join(
                f"{stats[m][stat]:>9.{3 if m == 'stoi' else 2}f}" if m in stats else f"{'-':>9}" for m in metrics
            )
            lines.append(f"{label if i == 0 else '':<8}{stat:<7}{count if i == 0 else '':>6}{cells}")
    if summary.get("num_skipped"):
        lines.append(f"skipped {summary['num_skipped']} of {summary.get('num_mixtures')} mixtures (reasons in summary.json)")
    return "\n".join(lines)


def write(out: str | Path, rows: list[dict[str, Any]], summary: dict[str, Any],
          skipped: list[dict[str, str]] | None = None) -> Report:
    """Write ``per_mixture.csv`` and ``summary.json`` into ``out`` (atomically, replacing earlier ones)."""
    out = Path(out)
    write_csv(out / CSV_NAME, rows)
    atomic.write_json(out / SUMMARY_NAME, summary)
    return Report(rows, summary, out, list(skipped or []))
