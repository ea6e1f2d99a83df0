"""The report as blocks (headings, paragraphs, tables, lists, the figure), written out as Markdown, HTML and JSON.

One list of blocks feeds both text formats, so report.md and report.html always say the same thing.
"""

import base64
import html
from collections.abc import Sequence
from typing import Any

from evalrunner.report.cells import NOTES, Stats
from evalrunner.report.intervals import Diff

FIGURE = "scores_vs_shots"
Block = tuple[Any, ...]  # ("h1"|"h2"|"p", text) | ("table", header, rows) | ("ul", items) | ("figure",)


def _num(x: float) -> str:
    return f"{x:.2f}"


def _ci(iv: tuple[float, float] | None) -> str:
    return "n/a" if iv is None else f"[{_num(iv[0])}, {_num(iv[1])}]"


def blocks(title: str, stats: Sequence[Stats], problems: Sequence[str], resamples: int, seed: int,
           diffs: Sequence[Diff] | None, other: str | None) -> list[Block]:
    out: list[Block] = [("h1", f"Report: {title}"), ("figure",), ("p", (
        "Error bars: the trials' standard deviation (np.std, as results.json). Band and interval: 95% percentile "
        f"bootstrap interval of the mean over trials, {resamples} resamples, seed {seed}. Test items are resampled "
        "with the same indices in every trial, so the interval holds the item noise and the demo-draw noise "
        "(random demos are drawn per item and trial)."))]
    for dataset in sorted({s.cell.dataset for s in stats}):
        rows = [s for s in stats if s.cell.dataset == dataset]
        out.append(("h2", f"{dataset} ({rows[0].cell.metric})"))
        out.append(("table", ["config", "shots", "trials", "mean ± stddev", "95% interval", "items"],
                    [[s.cell.group, str(s.cell.shots), str(len(s.cell.trials)),
                      f"{_num(s.cell.mean)} ± {_num(s.cell.stddev)}", _ci(s.interval), str(s.items or "")]
                     for s in rows]))
        kinds = sorted({s.kind for s in rows if s.kind})
        missing = [s for s in rows if s.kind is None]
        notes = [NOTES[k] for k in kinds] + (["n/a: the jobs saved no per-item scores"] if missing else [])
        out.append(("ul", [f"Interval: {n}." for n in notes]))
    if problems:
        out += [("h2", f"Not in the report: {len(problems)} job(s)"), ("ul", list(problems))]
    if diffs is not None:
        out += _diff_blocks(diffs, other or "")
    return out


def _diff_blocks(diffs: Sequence[Diff], other: str) -> list[Block]:
    compared = [d for d in diffs if d.refused is None]
    out: list[Block] = [("h2", f"Difference: this sweep − {other}"), ("p", (
        f"{len(compared)} shared cell(s) compared. Difference of the means over trials, with a paired 95% bootstrap "
        "interval: the same test items resampled in both sweeps and in all their trials. "
        "Marked **yes** where the interval excludes 0."))]
    if compared:
        out.append(("table", ["dataset", "shots", "this", "other", "difference", "95% interval", "excludes 0"],
                    [[d.a.dataset, str(d.a.shots), f"{d.a.group} {_num(d.a.mean)}", f"{d.b.group} {_num(d.b.mean)}",
                      f"{d.delta:+.2f}", _ci(d.interval), "**yes**" if d.excludes_zero else "no"] for d in compared]))
    refused = [f"{d.a.dataset} shots={d.a.shots} ({d.a.group} vs {d.b.group}): not compared, {d.refused}"
               for d in diffs if d.refused is not None]
    if refused:
        out.append(("ul", refused))
    if not diffs:
        out.append(("p", "The two sweeps share no cell (dataset, shots, and config group when a sweep has several)."))
    return out


def markdown(doc: Sequence[Block]) -> str:
    lines: list[str] = []
    for b in doc:
        if b[0] in ("h1", "h2"):
            lines += ["#" * int(b[0][1]) + " " + b[1], ""]
        elif b[0] == "p":
            lines += [b[1], ""]
        elif b[0] == "figure":
            lines += [f"![score against shots]({FIGURE}.png)", ""]
        elif b[0] == "ul":
            lines += [f"- {item}" for item in b[1]] + [""]
        elif b[0] == "table":
            header, rows = b[1], b[2]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows] + [""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    return html.escape(text).replace("**yes**", "<b>yes</b>").replace("**", "")


def page(doc: Sequence[Block], png: bytes) -> str:
    """One self-contained HTML file: the figure is embedded as a data URI."""
    body: list[str] = []
    for b in doc:
        if b[0] in ("h1", "h2", "p"):
            body.append(f"<{b[0]}>{_inline(b[1])}</{b[0]}>")
        elif b[0] == "figure":
            data = base64.b64encode(png).decode("ascii")
            body.append(f'<figure><img alt="score against shots" src="data:image/png;base64,{data}"></figure>')
        elif b[0] == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
        elif b[0] == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    title = _inline(doc[0][1])
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
             "img{max-width:100%}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def json_doc(title: str, stats: Sequence[Stats], problems: Sequence[str], resamples: int, seed: int,
             diffs: Sequence[Diff] | None, other: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "sweep": title,
        "bootstrap": {"level": 0.95, "resamples": resamples, "seed": seed, "method": "percentile",
                      "resampled": "test items, with the same indices in every trial of a cell"},
        "cells": [{"group": s.cell.group, "dataset": s.cell.dataset, "shots": s.cell.shots, "metric": s.cell.metric,
                   "trials": s.cell.trials, "mean": s.cell.mean, "stddev": s.cell.stddev,
                   "interval": None if s.interval is None else list(s.interval), "items": s.items,
                   "interval_note": None if s.kind is None else NOTES[s.kind]} for s in stats],
        "problems": list(problems),
    }
    if diffs is not None:
        doc["diff"] = {"other": other, "difference": "this sweep's mean - the other's", "cells": [
            {"dataset": d.a.dataset, "shots": d.a.shots, "group": d.a.group, "other_group": d.b.group,
             "mean": d.a.mean, "other_mean": d.b.mean, "difference": d.delta,
             "interval": None if d.interval is None else list(d.interval), "excludes_zero": d.excludes_zero,
             "refused": d.refused} for d in diffs]}
    return doc
