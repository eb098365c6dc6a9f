"""Report: the CSV, the summary statistics, the table and the atomic files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from deepclust.evaluation import report


def _row(id_, k, sdr, stoi=None, estimated=None):
    row = {"id": id_, "num_speakers": k, "sdr": sdr, "si_sdri": sdr - 1.0,
           "sdr_sources": [sdr] * k, "permutation": list(range(k)), "warnings": []}
    if stoi is not None:
        row["stoi"] = stoi
    if estimated is not None:
        row["estimated_speakers"] = estimated
    return row


ROWS = [_row("a", 2, 10.0, 0.9, 2), _row("b", 2, 12.0, 0.8, 3), _row("c", 3, 5.0, 0.7, 3), _row("nan", 2, math.nan)]


def test_summarize_means_medians_counts_and_skips_non_finite():
    summary = report.summarize(ROWS)
    assert summary["overall"]["sdr"] == {"mean": 9.0, "median": 10.0, "count": 3}
    assert summary["by_num_speakers"]["2"]["sdr"] == {"mean": 11.0, "median": 11.0, "count": 2}
    assert summary["by_num_speakers"]["3"]["stoi"]["count"] == 1
    assert "sar" not in summary["overall"]  # only what the rows hold
    assert report.summarize([]) == {"overall": {}, "by_num_speakers": {}}


def test_speaker_count_accuracy():
    count = report.speaker_count(ROWS[:3])
    assert count == {"accuracy": pytest.approx(2 / 3), "count": 3, "by_num_speakers": {"2": 0.5, "3": 1.0}}
    assert report.speaker_count([])["accuracy"] is None


def test_csv_columns_follow_the_rows(tmp_path: Path):
    path = report.write_csv(tmp_path / "rows.csv", ROWS)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    assert header[:3] == ["id", "num_speakers", "estimated_speakers"]
    assert "sir" not in header and "stoi" in header and "sdr_sources" in header
    assert rows[0]["sdr"] == "10.0000" and rows[0]["sdr_sources"] == "10.0000;10.0000"
    assert rows[2]["permutation"] == "0;1;2" and rows[3]["stoi"] == ""
    empty = report.write_csv(tmp_path / "empty.csv", [])
    assert empty.read_text().strip() == "id,num_speakers"


def test_format_table():
    summary = {**report.summarize(ROWS), "num_skipped": 2, "num_mixtures": 6}
    table = report.format_table(summary)
    lines = table.splitlines()
    assert lines[0].split() == ["count", "SDR", "SI-SDRi", "STOI"]
    assert lines[1].split()[:3] == ["all", "mean", "3"] and "0.800" in lines[1]
    assert any(line.startswith("2 spk") for line in lines) and any(line.startswith("3 spk") for line in lines)
    assert lines[-1] == "skipped 2 of 6 mixtures (reasons in summary.json)"


def test_write_replaces_atomically(tmp_path: Path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / report.SUMMARY_NAME).write_text("old")
    (out / report.CSV_NAME).write_text("old")
    summary = {"num_mixtures": 4, **report.summarize(ROWS)}
    result = report.write(out, ROWS, summary, [{"id": "x", "where": "l:1", "reason": "r"}])
    assert result.out == out and result.rows == ROWS and result.skipped[0]["id"] == "x"
    assert json.loads((out / report.SUMMARY_NAME).read_text()) == json.loads(json.dumps(summary))
    assert (out / report.CSV_NAME).read_text().startswith("id,")
    assert sorted(p.name for p in out.iterdir()) == [report.CSV_NAME, report.SUMMARY_NAME]  # no temporaries
    assert result.table() == report.format_table(summary)
