"""Evaluation reports: ``report.json`` (everything) and ``report.md`` (what a person reads first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.rundir import atomic_write_text, write_json, write_jsonl


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _with_ci(value: float | None, ci: list[float] | None) -> str:
    if value is None or not ci or ci[0] is None:
        return _fmt(value)
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _perplexity_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"Split `{report['split']}`, {report['rows']} rows. Scoring: {report['scoring']}. "
        f"Base model: `{report['base_model']}`.",
        "",
        "| model | loss | perplexity | tokens | nll / word |",
        "|---|---|---|---|---|",
    ]
    for name, m in report["models"].items():
        per_word = _fmt(m.get("nll_per_word"))
        ppl = f"{m['perplexity']:.2f}"
        if "ci" in m:
            ppl += f" [{m['ci']['perplexity'][0]:.2f}, {m['ci']['perplexity'][1]:.2f}]"
        lines.append(f"| {name} | {_fmt(m['loss'])} | {ppl} | {m['tokens']:,} | {per_word} |")
    if any("ci" in m for m in report["models"].values()):
        lines += ["", "Brackets: 95% bootstrap intervals over examples."]
    for name, m in report["models"].items():
        for key, values in m.get("groups", {}).items():
            lines += ["", f"{name}, loss per token by {key}:", "", f"| {key} | rows | loss | 95% interval |"]
            lines.append("|---|---|---|---|")
            for value, g in values.items():
                few = " (few rows)" if g.get("few_rows") else ""
                lo, hi = g["ci"] if g.get("ci") else (None, None)
                lines.append(f"| {value or '—'}{few} | {g['n']} | {_fmt(g['score'])} | {_fmt(lo)} – {_fmt(hi)} |")
    for pair, tests in report.get("paired", {}).items():
        if "loss" in tests:
            t = tests["loss"]
            lines.append(f"- {pair}: loss per token {t['delta']:+.4f}, paired permutation p = {t['p_value']:.3g}.")
    return lines


def _preference_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"Split `{report['split']}`, {report['rows']} rows, {report['scored']} held-out pairs scored. "
        f"Scoring: {report['scoring']}. Base model: `{report['base_model']}`.",
        "",
    ]
    ranked = any("spearman" in m for m in report["models"].values())  # ratings: correlation with human scores
    extra = " Spearman with scores |" if ranked else ""
    lines += [
        f"| model | accuracy | margin | likelihood accuracy | pairs |{extra}",
        "|---|---|---|---|---|" + "---|" * ranked,
    ]
    for name, m in report["models"].items():
        ci = m.get("ci") or {}
        cells = [_with_ci(m.get(k), ci.get(k)) for k in ("accuracy", "margin", "likelihood_accuracy")]
        rho = f" {_fmt(m.get('spearman'))} |" if ranked else ""
        lines.append(f"| {name} | {' | '.join(cells)} | {m['n']} |{rho}")
    lines += ["", "Brackets: 95% bootstrap intervals over pairs."]
    for pair, tests in report.get("paired", {}).items():
        for metric, t in tests.items():
            lines.append(
                f"- {pair}, {metric}: McNemar {t['b']} pairs only the first ranks right vs {t['c']} only the "
                f"second, p = {t['p_value']:.3g}."
            )
    return lines


def _reward_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"Split `{report['split']}`, {report['scored']} held-out prompts. Scoring: {report['scoring']}. "
        f"Base model: `{report['base_model']}`.",
        "",
        "| model | mean reward | prompts |",
        "|---|---|---|",
    ]
    for name, m in report["models"].items():
        lines.append(f"| {name} | {_with_ci(m['reward'], (m.get('ci') or {}).get('reward'))} | {m['n']} |")
    for pair, tests in report.get("paired", {}).items():
        t = tests["reward"]
        lines.append(f"- {pair}: reward {t['delta']:+.4f}, paired permutation p = {t['p_value']:.3g}.")
    lines += ["", "Answers and their rewards: `eval/answers.jsonl`."]
    return lines


def _label_lines(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines.append(
        f"Split `{report['split']}`, {report['rows']} rows, labels {', '.join(report['labels'])} "
        f"(gold counts: {', '.join(f'{k} {v}' for k, v in report['gold_counts'].items())}). "
        f"Scoring: {report['scoring']}. Base model: `{report['base_model']}`."
    )
    models: list[dict[str, Any]] = list(report["models"].values())
    rule = next((m["calibration"] for m in models if "calibration" in m), None)
    extra = " other rule: accuracy / macro-F1 |" if rule else ""
    lines += ["", f"| model | accuracy | macro-F1 | weighted-F1 | rows |{extra}"]
    lines += ["|---|---|---|---|---|" + ("---|" if rule else "")]
    for name, m in report["models"].items():
        other = m.get("other_rule", {})
        cell = f" {_fmt(other.get('accuracy'))} / {_fmt(other.get('macro_f1'))} |" if rule else ""
        ci = m.get("ci", {})
        scores = " | ".join(_with_ci(m.get(k), ci.get(k)) for k in ("accuracy", "macro_f1", "weighted_f1"))
        lines.append(f"| {name} | {scores} | {m['n']} |{cell}")
        if m.get("unparsed"):
            lines.append(f"| ↳ answers naming no label | {m['unparsed']} of {m['n']} (counted wrong) | | | |")
    if any("ci" in m for m in models):
        lines += ["", "Brackets: 95% bootstrap intervals (1,000 resamples of the test rows)."]
    for pair, tests in report.get("paired", {}).items():
        f1, acc = tests["macro_f1"], tests["accuracy"]
        lines.append(
            f"- {pair}: macro-F1 {f1['delta']:+.3f} [{f1['low']:+.3f}, {f1['high']:+.3f}], paired bootstrap "
            f"p = {f1['p_value']:.3f}; accuracy McNemar ({acc['method']}) p = {acc['p_value']:.3g} "
            f"({acc['b']} rows only the first got right, {acc['c']} only the second)."
        )
    if rule:
        lines += [
            "",
            f"Headline rule: `{rule}`. 'batch' divides out each model's label prior, estimated from its mean label "
            "distribution on these rows without gold labels (Zhou et al. 2023); 'none' is the plain argmax of the "
            "log-likelihoods. The last column shows the other rule.",
        ]
    for name, m in report["models"].items():
        lines += [
            "",
            f"## {name}",
            "",
            "| label | precision | recall | F1 | support | predicted |",
            "|---|---|---|---|---|---|",
        ]
        for lab, s in m.get("per_label", {}).items():
            lines.append(
                f"| {lab} | {_fmt(s['precision'])} | {_fmt(s['recall'])} | {_fmt(s['f1'])} | {s['support']} "
                f"| {m['predicted_counts'][lab]} |"
            )
        for key, values in m.get("groups", {}).items():
            lines += ["", f"By {key}:", "", f"| {key} | rows | accuracy | macro-F1 |", "|---|---|---|---|"]
            for value, g in values.items():
                few = " (few rows)" if g.get("few_rows") else ""
                lines.append(f"| {value or '—'}{few} | {g['n']} | {_fmt(g['accuracy'])} | {_fmt(g['macro_f1'])} |")
            gap = m.get("group_gap", {}).get(key, {})
            if gap.get("gap") is not None:
                lines.append(
                    f"\nBest-worst macro-F1 gap by {key}: {gap['gap']:.3f} ({gap['best']} {gap['best_value']:.3f} vs "
                    f"{gap['worst']} {gap['worst_value']:.3f}); groups under the row minimum are not ranked."
                )
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {report['run']}", ""]
    task = report.get("task", "labels")
    if task == "preferences":
        lines += _preference_lines(report)
    elif task == "rewards":
        lines += _reward_lines(report)
    else:
        lines += _label_lines(report) if task == "labels" else _perplexity_lines(report)
    lines += _generation_lines(report)
    warning = report.get("overfitting", {}).get("warning")
    if warning:
        lines += ["", f"**Overfitting warning:** {warning}"]
    if "forgetting" in report:
        f = report["forgetting"]
        lines += [
            "",
            "## Forgetting (retention suite)",
            "",
            f"Suite `{f['suite']}`: {f['summary']}.",
            "",
            "| model | general-text perplexity | general questions right |",
            "|---|---|---|",
            f"| base | {f['base']['perplexity']:.2f} | {f['base']['accuracy']:.1%} of {f['base']['questions']} |",
            f"| tuned | {f['tuned']['perplexity']:.2f} | {f['tuned']['accuracy']:.1%} of {f['tuned']['questions']} |",
        ]
    if "training" in report:
        t = report["training"]
        lines += ["", "## Training", ""]
        if t["method"] == "fewshot":
            lines.append(
                f"fewshot ({t['select']}) on `{t['base']}`: no training; {t['demonstrations']} demonstrations "
                "from the training split in front of each query (`adapter/fewshot.json`)."
            )
            return "\n".join(lines) + "\n"
        lines += [
            f"{t['method']} on `{t['base']}`: {t['trainable_params']:,} trainable parameters "
            f"({t['trainable_pct']}%), {t['steps']} steps, {t['tokens_seen']:,} tokens at "
            f"{t['tokens_per_s']:,} tok/s ({t['precision']}), best validation loss "
            f"{_fmt(t['best_val_loss'])} at step {t['best_step']}.",
        ]
    return "\n".join(lines) + "\n"


_ROW_LEVEL = (
    "predictions",
    "scores",
    "per_example",
    "answers",
)  # per-row values go to predictions.jsonl, not report.json


def _slim(generation: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in generation.items() if k not in ("answers", "row_chrf")}


def _generation_lines(report: dict[str, Any]) -> list[str]:
    models = {n: m["generation"] for n, m in report["models"].items() if "generation" in m}
    if not models:
        return []
    lines = [
        "",
        f"## Generated answers ({report.get('generation_rows', '?')} rows, greedy)",
        "",
        "| model | chrF | chrF++ | BLEU | exact match | length ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, g in models.items():
        lines.append(
            f"| {name} | {_fmt(g['chrf'])} | {_fmt(g['chrf_pp'])} | {_fmt(g['bleu'])} | {_fmt(g['exact_match'])} "
            f"| {_fmt(g['length_ratio'])} |"
        )
    signatures = next(iter(models.values())).get("signatures") or {}
    lines += ["", "sacrebleu signatures: " + "; ".join(f"{k} `{v}`" for k, v in signatures.items())]
    for pair, tests in report.get("paired", {}).items():
        if "chrf" in tests:
            t = tests["chrf"]
            lines.append(f"- {pair}: sentence chrF {t['delta']:+.2f}, paired permutation p = {t['p_value']:.3g}.")
    return lines


def write_report(report: dict[str, Any], out_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write report.json, report.md and predictions.jsonl (one line per scored row, every model)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    preds = []
    for i, r in enumerate(rows if report.get("task", "labels") == "labels" else []):
        preds.append(
            {
                "source": r.get("source"),
                "text": r.get("text"),
                "label": r["label"],
                "groups": r.get("groups", {}),
                "predictions": {name: m["predictions"][i] for name, m in report["models"].items()},
                "label_logprobs": {name: m["scores"][i] for name, m in report["models"].items()},
                **(
                    {"answers": {n: m["answers"][i] for n, m in report["models"].items() if "answers" in m}}
                    if any("answers" in m for m in report["models"].values())
                    else {}
                ),
            }
        )
    generated = {n: m["generation"] for n, m in report["models"].items() if "answers" in m.get("generation", {})}
    if generated:  # every model's answer to each prompt, beside the reference
        n_rows = len(next(iter(generated.values()))["answers"])
        preds = [
            {
                "source": rows[i].get("source"),
                "prompt": rows[i].get("prompt"),
                "reference": rows[i].get("completion"),
                "answers": {name: g["answers"][i] for name, g in generated.items()},
                "chrf": {name: g["row_chrf"][i] for name, g in generated.items()},
            }
            for i in range(n_rows)
        ]
    if preds:
        write_jsonl(out_dir / "predictions.jsonl", preds)
    slim = {
        **report,
        "models": {
            n: {k: _slim(v) if k == "generation" else v for k, v in m.items() if k not in _ROW_LEVEL}
            for n, m in report["models"].items()
        },
    }
    write_json(out_dir / "report.json", slim)
    atomic_write_text(out_dir / "report.md", render_markdown(slim))
