"""One self-contained HTML page per evaluation: summary, per-class table, figures, history and config."""

from __future__ import annotations

import base64
import datetime
import html
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emolens import __version__
from emolens._io import write_text
from emolens.evaluate.agreement import scoring_notes

logger = logging.getLogger(__name__)

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}

_CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#e3e6ec; --accent:#2563eb; --soft:#f5f7fa; --bar:#93b4f5; }
* { box-sizing:border-box; }
body { margin:0; background:#fff; color:var(--fg); font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
main { max-width:1040px; margin:0 auto; padding:32px 28px 48px; }
header { border-bottom:3px solid var(--accent); padding-bottom:12px; margin-bottom:24px; }
h1 { margin:0; font-size:26px; } h2 { font-size:18px; margin:32px 0 12px; }
.sub { color:var(--muted); font-size:13px; margin-top:4px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:12px; }
.card { background:var(--soft); border:1px solid var(--line); border-radius:10px; padding:12px 16px; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:24px; font-weight:600; font-variant-numeric:tabular-nums; overflow-wrap:anywhere; }
table { border-collapse:collapse; width:100%; font-size:14px; font-variant-numeric:tabular-nums; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:right; vertical-align:top; }
th { background:var(--soft); font-weight:600; }
th:first-child, td:first-child { text-align:left; }
td.bar { background:linear-gradient(var(--bar),var(--bar)) no-repeat left bottom / var(--v) 4px; }
table.pc { table-layout:fixed; } table.pc th:first-child { width:24%; }
.warning { background:#fff4e5; border:1px solid #f5c27a; border-radius:8px; padding:10px 14px; margin:0 0 12px; }
tr.best td { font-weight:600; background:#eef9f0; }
table.kv td { text-align:left; } table.kv td:first-child { width:30%; color:var(--muted); }
pre { background:var(--soft); border:1px solid var(--line); border-radius:8px; padding:12px 14px; overflow-x:auto;
      font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; margin:0; white-space:pre; }
table.kv pre { background:none; border:0; padding:0; white-space:pre-wrap; }
figure { margin:0 0 28px; text-align:center; }
figure img { max-width:100%; max-height:760px; width:auto; height:auto;
             border:1px solid var(--line); border-radius:8px; }
figcaption { color:var(--muted); font-size:13px; margin-top:6px; font-weight:600; }
@media print {
  main { max-width:none; padding:0; } body { font-size:12px; }
  * { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
  section, figure, tr, .card { break-inside:avoid; } h2 { break-after:avoid; } pre { white-space:pre-wrap; }
}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, fmt: str = ".4f") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e("" if value is None else value)
    return _e(str(value) if isinstance(value, int) else format(value, fmt))


def _summary(metrics: dict) -> str:
    cards = []
    if metrics.get("accuracy") is not None:
        cards.append(("Accuracy", f"{100 * metrics['accuracy']:.2f}%"))
    if metrics.get("macro_f1") is not None:
        cards.append(("Macro F1", _number(metrics["macro_f1"], ".3f")))
    calibration = metrics.get("calibration") or {}
    if calibration.get("ece_raw") is not None:
        cards.append(("Calibration error", f"{calibration['ece_raw']:.3f} &rarr; {calibration['ece_calibrated']:.3f}"))
    for key, label in (("num_images", "Images"), ("split", "Split"), ("model", "Model")):
        if metrics.get(key) is not None:
            cards.append((label, _number(metrics[key])))
    body = "".join(
        f'<div class="card"><div class="label">{_e(k)}</div><div class="value">{v}</div></div>' for k, v in cards
    )
    warnings = "".join(f'<p class="warning">Warning: {_e(w)}</p>' for w in metrics.get("warnings") or [])
    return f'<section><h2>Summary</h2>{warnings}<div class="cards">{body}</div></section>'


def _agreement(metrics: dict) -> str:
    """With a labels file: how often people would agree, what was left out, and how the classes met."""
    cards = []
    if "agreement" in metrics:
        cards.append(("Agreement with the votes' majority", f"{100 * metrics['accuracy']:.2f}%"))
        cards.append(("Vote share of the prediction", f"{100 * metrics['agreement']['vote_share']:.2f}%"))
    source = metrics.get("source_label") or {}
    if source.get("accuracy") is not None:
        cards.append(
            ("Accuracy against the folders' labels", f"{100 * source['accuracy']:.2f}% of {source['num_images']}")
        )
    body = "".join(
        f'<div class="card"><div class="label">{_e(k)}</div><div class="value">{v}</div></div>' for k, v in cards
    )
    notes = scoring_notes(metrics)
    table = ""
    bins = ((metrics.get("agreement") or {}).get("vote_calibration") or {}).get("table") or []
    if bins:
        rows = "".join(
            f"<tr><td>{b['from']:.2f}-{b['to']:.2f}</td><td>{b['faces']}</td><td>{b['confidence']:.3f}</td><td>{b['vote_share']:.3f}</td></tr>"
            for b in bins
        )
        gap = metrics["agreement"]["vote_calibration"]["gap"]
        table = (
            f"<h3>Confidence against the share of annotators who chose that emotion (mean gap {gap:.3f})</h3>"
            f"<table><tr><th>Confidence</th><th>Faces</th><th>Mean confidence</th><th>Mean vote share</th></tr>{rows}</table>"
        )
    if not (cards or notes):
        return ""
    listed = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<section><h2>Agreement with people</h2><div class="cards">{body}</div><ul>{listed}</ul>{table}</section>'


def _per_class(metrics: dict) -> str:
    per_class = metrics.get("per_class") or {}
    if not per_class:
        return ""
    names = [n for n in metrics.get("class_names", []) if n in per_class]
    names += [n for n in per_class if n not in names]
    rows = []
    for name in names:
        row = per_class[name]
        cells = "".join(
            f'<td class="bar" style="--v:{100 * float(row.get(k) or 0):.1f}%">{_number(row.get(k), ".3f")}</td>'
            for k in ("precision", "recall", "f1")
        )
        rows.append(f"<tr><td>{_e(name)}</td>{cells}<td>{_number(row.get('support'))}</td></tr>")
    head = "<tr><th>Class</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th></tr>"
    return f'<section><h2>Per class</h2><table class="pc">{head}{"".join(rows)}</table></section>'


def _figures(figures: Mapping[str, str | os.PathLike]) -> str:
    parts = []
    for caption, file in figures.items():
        file = Path(file)
        if not file.is_file():
            logger.warning("report: figure %r not found at %s, skipped", caption, file)
            continue
        mime = _MIME.get(file.suffix.lower(), "application/octet-stream")
        data = base64.b64encode(file.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img src="data:{mime};base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    return f"<section><h2>Figures</h2>{''.join(parts)}</section>" if parts else ""


def _history(history: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in history for key in row))
    scores = [row.get("val_accuracy") for row in history]
    valid = [s for s in scores if isinstance(s, (int, float)) and s == s]  # s == s drops NaN
    best = scores.index(max(valid)) if valid else -1
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = "".join(
        f"<tr{' class=best' if i == best else ''}>"
        + "".join(
            f"<td>{_number(_cell(c, row.get(c)), '.3g' if 'learning_rate' in c else '.4f')}</td>" for c in columns
        )
        + "</tr>"
        for i, row in enumerate(history)
    )
    return f"<section><h2>Training history</h2><table><tr>{head}</tr>{rows}</table></section>"


def _cell(column: str, value: Any) -> Any:
    # history.csv is read back as floats; an epoch is a count, shown as one ("12", not "12.0000").
    return int(value) if column == "epoch" and isinstance(value, float) and value.is_integer() else value


def _config(config: dict) -> str:
    rows = []
    for key, value in config.items():
        if isinstance(value, (dict, list, tuple)):
            text = json.dumps(value, default=str)
            shown = f"<pre>{_e(text if len(text) <= 80 else json.dumps(value, indent=2, default=str))}</pre>"
        else:
            shown = _e(json.dumps(value, default=str) if value is None or isinstance(value, bool) else value)
        rows.append(f"<tr><td>{_e(key)}</td><td>{shown}</td></tr>")
    return f'<section><h2>Configuration</h2><table class="kv">{"".join(rows)}</table></section>'


def write_html_report(
    path: str | os.PathLike,
    *,
    title: str,
    metrics: dict,
    classification_report: str,
    figures: Mapping[str, str | os.PathLike],
    config: dict | None = None,
    history: list[dict] | None = None,
) -> Path:
    """Writes one self-contained HTML page describing an evaluation (no external files or requests).

    Args:
        path: Where to write the page; parent folders are created and the write is atomic.
        title: Page title and heading.
        metrics: Evaluation metrics: `accuracy`, `macro_f1`, `num_images`, `split`, `class_names`,
            `per_class` ({name: {precision, recall, f1, support}}) and optionally `model`.
        classification_report: scikit-learn's text classification report, shown verbatim.
        figures: Caption -> image file, shown in this order and embedded as base64 data URIs;
            files that do not exist are skipped with a warning.
        config: Optional settings shown as a key/value table (nested values as JSON).
        history: Optional per-epoch training history rows, shown as a table.

    Returns:
        The path written.
    """
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sections = [
        _summary(metrics),
        _agreement(metrics),
        _per_class(metrics),
        f"<section><h2>Classification report</h2><pre>{_e(classification_report.rstrip())}</pre></section>",
        _figures(figures),
        _history(history) if history else "",
        _config(config) if config else "",
    ]
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body><main>"
        f"<header><h1>{_e(title)}</h1>"
        f'<div class="sub">Generated by emolens {_e(__version__)} on {_e(stamp)}</div></header>\n'
        + "\n".join(s for s in sections if s)
        + "\n</main></body></html>\n"
    )
    path = Path(path)
    write_text(path, page)
    logger.debug("wrote report %s", path)
    return path
