"""What a study found: the trials table, parameter importances, the best config as a ready-to-run YAML, and a
self-contained HTML page with its charts (``<output_dir>/<study>/hpo/``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.config.load import dump_config, load_config
from tunesmith.eval.htmlkit import chart, e, page, table
from tunesmith.rundir import atomic_write_text, write_json


def summarise(handle: Any, metric: str) -> dict[str, Any]:
    """The study as JSON-ready data: every trial, the best one, and parameter importances."""
    from optuna.trial import TrialState

    trials = []
    for t in handle.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        trials.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value if t.state == TrialState.COMPLETE else None,  # a pruned trial has no score
                "pruned_at": max(t.intermediate_values)
                if t.state == TrialState.PRUNED and t.intermediate_values
                else None,
                "params": t.params,
                "run_dir": t.user_attrs.get("run_dir"),
                "seconds": round(seconds, 1) if seconds is not None else None,
                "intermediate": sorted(t.intermediate_values.items()),
            }
        )
    complete = [t for t in handle.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best = handle.best_trial if complete else None
    summary = {
        "study": handle.study_name,
        "metric": metric,
        "direction": handle.direction.name.lower(),
        "trials": trials,
        "counts": {s: sum(1 for t in trials if t["state"] == s) for s in ("complete", "pruned", "fail", "running")},
        "best": {"number": best.number, "value": best.value, "params": best.params} if best else None,
        "importances": importances(handle) if len(complete) >= 2 else {},
    }
    summary["best_vs_first"] = against_first(summary)
    return summary


def _tuned_predictions(run_dir: str | None) -> tuple[list[tuple[str, int]], list[str], list[str], list[str]] | None:
    """(row keys, gold, tuned predictions, labels) of a classification trial's evaluation, or None."""
    if not run_dir:
        return None
    eval_dir = Path(run_dir) / "eval"
    try:
        report = json.loads((eval_dir / "report.json").read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in (eval_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError):
        return None
    tuned = next((name for name in report.get("models", {}) if name.startswith("tuned")), None)
    if tuned is None or not report.get("labels") or not rows or "label" not in rows[0]:
        return None
    keys = [(str(r.get("source", {}).get("file")), int(r.get("source", {}).get("line") or 0)) for r in rows]
    return keys, [r["label"] for r in rows], [r["predictions"].get(tuned, "") for r in rows], report["labels"]


def against_first(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The best trial against trial 0 (the config's own values) on the same evaluation rows: the metric's
    difference with its 95% interval and p-value from a paired bootstrap, so a study says whether it beat
    the default or only drew a luckier number. None when the metric is not a classification metric, trial 0
    is the best, or the two trials did not score the same rows."""
    name = summary["metric"].split(".", 1)[-1]
    best = summary["best"]
    first = next((t for t in summary["trials"] if t["number"] == 0 and t["state"] == "complete"), None)
    if not best or not first or best["number"] == 0:
        return None
    chosen = next(t for t in summary["trials"] if t["number"] == best["number"])
    test = paired_runs(chosen["run_dir"], first["run_dir"], name)
    return {"metric": name, "trials": [best["number"], 0], **test} if test else None


def paired_runs(run_a: str | None, run_b: str | None, name: str) -> dict[str, Any] | None:
    """Run A's tuned model against run B's on the same evaluation rows: ``rows`` and the paired bootstrap's
    ``delta``, ``low``, ``high``, ``p_value`` for classification metric ``name``; None when it is not one or
    the runs did not score the same rows."""
    from tunesmith.eval.stats import CLASSIFICATION_METRICS, classification_metric_fns, encode_labels, paired_bootstrap

    if name not in CLASSIFICATION_METRICS:
        return None
    a, b = _tuned_predictions(run_a), _tuned_predictions(run_b)
    if a is None or b is None or a[0] != b[0] or a[1] != b[1]:
        return None
    _, gold, pred_a, labels = a
    codes_gold, codes_a = encode_labels(gold, pred_a, labels)
    _, codes_b = encode_labels(gold, b[2], labels)
    metric = classification_metric_fns(len(labels))[name]
    test = paired_bootstrap(metric, codes_gold, codes_a, codes_b, vectorised=True)
    return {"rows": len(gold), **{k: float(v) for k, v in test.items()}}


def importances(handle: Any) -> dict[str, float]:
    """Share of the metric's variance each parameter explains (Optuna's fANOVA); empty when it cannot tell
    (all trials alike, or a single parameter value)."""
    import optuna

    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(handle, evaluator=None).items()}
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}


def best_config_text(config_path: Path, user_overrides: list[str], best: dict[str, Any], name: str) -> str:
    """The study's config with the best trial's parameters, as YAML ``tunesmith run`` takes (full evaluation
    and exports as the original config asked: only the trials skipped them)."""
    from tunesmith.hpo.space import overrides

    config = load_config(config_path, [*user_overrides, *overrides(best["params"]), f"name={name}"])
    header = f"# The best trial ({best['number']}) of study '{name.removesuffix('-best')}': {best['params']}\n"
    return header + dump_config(config)


def _progress_chart(summary: dict[str, Any]) -> str:
    from tunesmith.eval.plots import _figure, _uri

    done = [t for t in summary["trials"] if t["state"] == "complete"]
    pruned = [t for t in summary["trials"] if t["state"] == "pruned"]
    maximize = summary["direction"] == "maximize"
    with _figure(7.0, 3.0) as (fig, ax):
        ax.scatter([t["number"] for t in done], [t["value"] for t in done], s=22, label="complete", color="#2f5fb3")
        running, best_line = None, []
        for t in sorted(done, key=lambda t: t["number"]):
            if running is None or (t["value"] > running if maximize else t["value"] < running):
                running = t["value"]
            best_line.append((t["number"], running))
        if best_line:
            ax.step(*zip(*best_line, strict=True), where="post", color="#d0582f", label="best so far")
        for t in pruned:
            ax.axvline(t["number"], color="#ccc", lw=0.8)
        ax.set_xlabel("trial (grey lines: pruned)")
        ax.set_ylabel(summary["metric"])
        ax.legend(frameon=False, fontsize=8)
    return _uri(fig)


def _param_charts(summary: dict[str, Any]) -> str:
    from tunesmith.eval.plots import _figure, _uri

    done = [t for t in summary["trials"] if t["state"] == "complete"]
    names = sorted({k for t in done for k in t["params"]})
    if not names:
        return ""
    with _figure(2.6 * len(names), 2.6, ncols=len(names), squeeze=False) as (fig, axes):
        for ax, name in zip(axes[0], names, strict=True):
            pts = [(t["params"][name], t["value"]) for t in done if name in t["params"]]
            xs = [p[0] if isinstance(p[0], int | float) else str(p[0]) for p in pts]
            ax.scatter(xs, [p[1] for p in pts], s=18, color="#2f5fb3")
            if name.endswith("lr") and all(isinstance(x, float) and x > 0 for x in xs):
                from matplotlib.ticker import NullFormatter

                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(name, fontsize=9)
        axes[0][0].set_ylabel(summary["metric"])
    return _uri(fig)


def render(summary: dict[str, Any]) -> str:
    best = summary["best"]
    rows = []
    for t in sorted(summary["trials"], key=lambda t: (t["value"] is None, t["number"])):
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in t["params"].items())
        value = f'<td class="n">{_fmt(t["value"])}</td>' if t["value"] is not None else '<td class="n">—</td>'
        mark = " <b>best</b>" if best and t["number"] == best["number"] else ""
        rows.append([str(t["number"]) + mark, e(t["state"]), value, e(params), e(t["seconds"] or "—")])
    counts = ", ".join(f"{n} {s}" for s, n in summary["counts"].items() if n)
    body = f'<p class="meta">metric: {e(summary["metric"])} ({e(summary["direction"])}); trials: {e(counts)}</p>'
    if best:
        body += f"<p>Best: trial {best['number']}, {e(summary['metric'])} = <b>{_fmt(best['value'])}</b> with " + e(
            ", ".join(f"{k}={_fmt(v)}" for k, v in best["params"].items())
        )
        body += ". Ready to run: <code>best.yaml</code>.</p>"
        if test := summary.get("best_vs_first"):
            verdict = "a significant improvement" if test["p_value"] < 0.05 else "not a significant difference"
            body += (
                f"<p>Against trial 0 (the config's own values), on the same {test['rows']:,} rows: "
                f"{e(test['metric'])} {test['delta']:+.4f} [{test['low']:+.4f}, {test['high']:+.4f}], "
                f"p = {test['p_value']:.3f} (paired bootstrap): <b>{verdict}</b>.</p>"
            )
        body += chart(lambda: _progress_chart(summary), alt="metric by trial")
        body += chart(lambda: _param_charts(summary), alt="metric against each parameter")
    if summary["importances"]:
        imp = [[e(k), f'<td class="n">{v:.2f}</td>'] for k, v in summary["importances"].items()]
        body += "<h2>Parameter importance</h2>" + table(["parameter", "share of variance"], imp)
    body += "<h2>Trials</h2>" + table(["trial", "state", summary["metric"], "parameters", "seconds"], rows)
    return page(f"study {summary['study']}", body, footer="tunesmith hyperparameter search")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def write_results(handle: Any, study: Any, metric: str, original_output_dir: str) -> dict[str, Any]:
    """``hpo/trials.json``, ``hpo/report.html`` and (once a trial completed) ``hpo/best.yaml``."""
    out = study.folder / "hpo"
    summary = summarise(handle, metric)
    write_json(out / "trials.json", summary)
    atomic_write_text(out / "report.html", render(summary))
    if summary["best"]:
        sets = [*study.user_overrides, f"output_dir={original_output_dir}"]
        atomic_write_text(
            out / "best.yaml", best_config_text(study.config_path, sets, summary["best"], f"{study.name}-best")
        )
    summary["folder"] = str(out)
    return summary
