"""``tunesmith tune``: a hyperparameter search over any config fields, each trial a normal run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tunesmith.cli.common import SetOpt, console, load, quiet_libraries
from tunesmith.errors import ConfigError


def tune_cmd(
    config: Path,
    trials: Annotated[
        int | None, typer.Option(help="Finished trials the study should hold (default hpo.trials).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Study database: a SQLite file or a URL (postgresql://...) shared by several workers."),
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: the config's name).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after this many seconds.")] = None,
    set_: SetOpt = None,
) -> None:
    """Search hyperparameters (hpo.space, or the method's default) with Optuna: TPE, pruning, resumable, shared."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError("tuning needs Optuna: pip install 'tunesmith[hpo]'") from None
    from tunesmith.hpo.results import write_results
    from tunesmith.hpo.space import direction_of
    from tunesmith.hpo.study import Study, check_space, optimize, storage_url

    base = load(config, set_)
    name = study or base.name
    folder = Path(base.output_dir) / name
    plan = Study(name, folder.resolve(), storage_url(storage, folder), config.resolve(), tuple(set_ or ()))
    check_space(base, plan)
    quiet_libraries()
    hpo = base.hpo
    console.print(
        f"study [bold]{name}[/]: {trials or hpo.trials} trials, {hpo.metric} "
        f"({hpo.direction or direction_of(hpo.metric)}), runs in {folder}, database {plan.storage.split('@')[-1]}",
        highlight=False,
    )
    handle = optimize(base, plan, trials, timeout)
    summary = write_results(handle, plan, hpo.metric, base.output_dir)
    table = Table(title=f"study {name}", show_edge=False)
    for col in ("trial", "state", hpo.metric, "parameters"):
        table.add_column(col, justify="right" if col in ("trial", hpo.metric) else "left")
    for t in sorted(summary["trials"], key=lambda t: t["number"]):
        value = f"{t['value']:.4g}" if t["value"] is not None else "—"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        table.add_row(str(t["number"]), t["state"], value, params)
    console.print(table)
    if summary["best"]:
        console.print(
            f"best: trial {summary['best']['number']}, {hpo.metric} {summary['best']['value']:.4g}; "
            f"run it: tunesmith run {summary['folder']}/best.yaml",
            highlight=False,
        )
    if test := summary.get("best_vs_first"):
        verdict = "significant" if test["p_value"] < 0.05 else "not significant"
        console.print(
            f"against trial 0 (your config's values) on the same {test['rows']:,} rows: {test['metric']} "
            f"{test['delta']:+.4f} [{test['low']:+.4f}, {test['high']:+.4f}], p = {test['p_value']:.3f} ({verdict})",
            highlight=False,
        )
    if summary["importances"]:
        shares = ", ".join(f"{k} {v:.2f}" for k, v in summary["importances"].items())
        console.print(f"importance: {shares}", highlight=False)
    console.print(f"report: {summary['folder']}/report.html", highlight=False)
