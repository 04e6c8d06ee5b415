"""``tunesmith monitor``: drift, the report and feedback export, over a served run's request log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tunesmith.cli.common import SetOpt, console, load, quiet_libraries
from tunesmith.errors import ConfigError

monitor_app = typer.Typer(no_args_is_help=True, help="Stage 7: request log, drift, feedback -> next round's data.")

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="The request log: a SQLite file or a database URL (default RUN_DIR/monitor.db)."),
]


def _store(run_dir: Path | None, store: str | None) -> Any:
    from tunesmith.monitor.store import Store

    if store is None and run_dir is None:
        raise ConfigError("give a RUN_DIR (its monitor.db) or --store PATH|URL.")
    target = store or str(run_dir / "monitor.db")  # type: ignore[operator]
    if "://" not in target and not Path(target).is_file():
        raise ConfigError(f"no request log at {target}: serve with `tunesmith serve RUN_DIR` (or --store) first.")
    return Store(target)


@monitor_app.command("export-data")
def monitor_export_data(
    run_dir: Annotated[
        Path | None, typer.Argument(help="The deployed run (its monitor.db; configs start from it).")
    ] = None,
    store: StoreOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder (default RUN_DIR/feedback).")] = None,
    model: Annotated[str | None, typer.Option(help="Only feedback on answers of this served model.")] = None,
) -> None:
    """Feedback -> preference, KTO, rating, ranking and SFT records, and retrain-*.yaml configs to `tunesmith run`."""
    from tunesmith.monitor.feedback_data import write_feedback_data

    if out is None and run_dir is None:
        raise ConfigError("give --out DIR (or a RUN_DIR, whose feedback/ folder is used).")
    out = out or run_dir / "feedback"  # type: ignore[operator]
    manifest = write_feedback_data(_store(run_dir, store), out, model)
    configs = {}
    if run_dir is not None and (run_dir / "config.yaml").is_file() and manifest["records"]:
        from tunesmith.monitor.retrain import retrain_configs

        quiet_libraries()
        with console.status("preparing the deployed model as the retraining base"):
            configs = retrain_configs(run_dir, out, manifest["records"])
    show_feedback_export(manifest, out, configs)


@monitor_app.command("drift")
def monitor_drift(
    run_dir: Annotated[Path, typer.Argument(help="The deployed run: its training prompts are the reference.")],
    store: StoreOpt = None,
    last: Annotated[int, typer.Option(help="Compare the most recent N logged requests.")] = 500,
    model: Annotated[str | None, typer.Option(help="Only requests to this served model.")] = None,
    no_semantic: Annotated[bool, typer.Option("--no-semantic", help="Skip the MiniLM embedding test.")] = False,
    set_: SetOpt = None,
) -> None:
    """Has traffic drifted from the training data? Language and script mix, length, fertility, code-mixing, meaning."""
    from tunesmith.monitor.drift_run import check_drift

    config = load(run_dir / "config.yaml", set_)
    quiet_libraries()
    with console.status(f"comparing the last {last} requests with {run_dir.name}'s training prompts"):
        report = check_drift(run_dir, _store(run_dir, store), last, config.monitor.thresholds, not no_semantic, model)
    show_drift(report)


@monitor_app.command("report")
def monitor_report(
    run_dir: Annotated[Path | None, typer.Argument(help="The deployed run (its monitor.db).")] = None,
    store: StoreOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder (default RUN_DIR/monitor).")] = None,
    set_: SetOpt = None,
) -> None:
    """Traffic, latency, tokens and language mix over time, drift checks, feedback per model, retrain advice (HTML)."""
    from tunesmith.config.schema import MonitorConfig
    from tunesmith.monitor.report import write_report

    settings = load(run_dir / "config.yaml", set_).monitor if run_dir else MonitorConfig()
    if out is None and run_dir is None:
        raise ConfigError("give --out DIR (or a RUN_DIR, whose monitor/ folder is used).")
    out = out or run_dir / "monitor"  # type: ignore[operator]
    summary = write_report(_store(run_dir, store), out, run_dir, settings.negative_feedback_rate, settings.min_thumbs)
    show_report(summary, out)


def show_feedback_export(manifest: dict[str, Any], out: Any, configs: dict[str, str]) -> None:
    """What feedback became, what was rejected and why, and the command that retrains on it."""
    kinds = ", ".join(f"{k} {n}" for k, n in manifest["feedback_kinds"].items()) or "none"
    console.print(f"{manifest['feedback']} pieces of feedback ({kinds}) -> {out}")
    table = Table(title="records for the next round")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for info in manifest["records"].values():
        table.add_row(info["file"], str(info["rows"]))
    console.print(table)
    if manifest["rejected"]:
        reasons = "; ".join(f"{n} {why}" for why, n in manifest["reject_reasons"].items())
        console.print(f"[yellow]rejected {manifest['rejected']}[/] (rejects.jsonl): {reasons}", highlight=False)
    for objective, path in configs.items():
        console.print(f"retrain ({objective}): tunesmith run {path}", highlight=False)


def _drift_cell(axis: str, section: dict[str, Any]) -> str:
    """One line of the figures that decide an axis's verdict."""

    def p(test: dict[str, Any] | None) -> str:
        return f"p {test['p_value']:.2g}" if test and test.get("p_value") is not None else "p -"

    if axis in ("language", "script"):
        return f"JS {section['js']:.3f}, chi-square {p(section.get('chi_square'))}"
    if axis == "length":
        return ", ".join(
            f"{unit} PSI {section[unit]['psi']:.2f} (KS {p(section[unit].get('ks'))})"
            for unit in ("chars", "words")
            if unit in section
        )
    if axis == "codemix":
        ref, win = section["reference"], section["window"]
        return f"mean CMI {ref['mean_cmi']:.1f} -> {win['mean_cmi']:.1f} (KS {p(section.get('ks'))})"
    if axis == "fertility":
        ref, win = section["reference"], section["window"]
        return (
            f"tokens/word {ref['tokens_per_word']:.2f} -> {win['tokens_per_word']:.2f}, unknown "
            f"{100 * ref['unknown_rate']:.1f}% -> {100 * win['unknown_rate']:.1f}%"
        )
    if axis == "semantic":
        return f"domain AUC {section['domain_auc']['auc']:.2f}, MMD {p(section.get('mmd'))}"
    return ""


def show_drift(report: dict[str, Any]) -> None:
    """Each axis's deciding figures and verdict, then the alerts."""
    rows = report["rows"]
    table = Table(title=f"drift: {rows['window']} requests vs {rows['reference']} training prompts")
    table.add_column("axis")
    table.add_column("figures", overflow="fold")
    table.add_column("verdict")
    for axis in ("language", "script", "length", "codemix", "fertility", "semantic"):
        section = report.get(axis) or {}
        if "skipped" in section or not section:
            table.add_row(axis, f"skipped: {section.get('skipped', 'not computed')}", "-")
            continue
        try:
            cell = _drift_cell(axis, section)
        except (KeyError, TypeError):
            cell = "(see the report)"
        verdict = "[red]drift[/]" if section.get("alert") else "[green]ok[/]" if axis != "codemix" else "reported"
        table.add_row(axis, cell, verdict)
    console.print(table)
    for alert in report.get("alerts", []):
        console.print(f"[bold red]alert:[/] {alert}", highlight=False)
    if not report.get("alerts"):
        console.print("[green]no drift[/]: every statistic is within its threshold")


def show_report(summary: dict[str, Any], out: Any) -> None:
    console.print(
        f"{summary['requests']} requests, {summary['feedback']} pieces of feedback, "
        f"{len(summary['drift_checks'])} drift checks -> {out}/report.html",
        highlight=False,
    )
    if summary["feedback"]:
        table = Table(title="feedback per served model", show_edge=False)
        for col in ("model", "requests", "thumbs up", "thumbs down", "mean rating", "side by side won / lost"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for model, stats in summary["by_model"].items():
            rating = stats.get("mean_rating")
            table.add_row(
                model,
                str(stats["requests"]),
                str(stats.get("thumbs_up", 0)),
                str(stats.get("thumbs_down", 0)),
                "—" if rating is None else f"{rating:.2f}",
                f"{stats.get('wins', 0)} / {stats.get('losses', 0)}",
            )
        console.print(table)
    advice = summary["recommendation"]
    if advice["retrain"]:
        for reason in advice["reasons"]:
            console.print(f"[bold yellow]retrain:[/] {reason}", highlight=False)
