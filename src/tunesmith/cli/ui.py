"""``tunesmith ui``: the web dashboard over a runs folder, with the playground and monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.common import console, quiet_libraries
from tunesmith.errors import ConfigError, ServeError


def ui_cmd(
    runs: Annotated[
        Path, typer.Option("--runs", help="Folder of run directories (runs started here go there too).")
    ] = Path("runs"),
    host: Annotated[str, typer.Option(help="Address to bind; the dashboard has no login, so loopback by default.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8700,
    serve: Annotated[
        str | None, typer.Option("--serve", help="Load this RUN_DIR or model into the playground at start.")
    ] = None,
    adapter: Annotated[
        list[str] | None, typer.Option("--adapter", help="With --serve: another LoRA adapter, name=path (repeatable).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(help="Also show this monitor store (SQLite file or database URL)."),
    ] = None,
    dtype: Annotated[str, typer.Option(help="Playground model dtype: auto, float32, bfloat16, float16.")] = "auto",
    insecure_expose: Annotated[
        bool,
        typer.Option(
            "--insecure-expose",
            help="Allow a non-loopback --host: whoever reaches it can start runs.",
        ),
    ] = False,
) -> None:
    """A web dashboard: runs, curves, reports, compare, start/stop runs, a side-by-side playground, monitoring."""
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError("the dashboard needs FastAPI, uvicorn and Jinja2: pip install 'tunesmith[serve]'") from None
    from tunesmith.serve.launch import build_engine, is_loopback, request_log
    from tunesmith.ui.app import create_ui_app
    from tunesmith.ui.guard import LOOPBACK_NAMES

    if not is_loopback(host) and not insecure_expose:
        raise ServeError(
            f"--host {host}: the dashboard has no login and starts runs; keep it on 127.0.0.1 and reach it through "
            "an SSH tunnel (ssh -L 8700:localhost:8700 HOST), or pass --insecure-expose on a trusted network."
        )
    if not runs.exists():
        runs.mkdir(parents=True)
    quiet_libraries()
    engine = log = None
    if serve:
        from tunesmith.cli.main import _named

        with console.status(f"loading {serve}"):
            engine = build_engine(serve, _named(adapter, "--adapter"), dtype)
        log = request_log(serve, None, "redact", False)
    app = create_ui_app(
        runs,
        engine=engine,
        log=log,
        served_target=serve,
        store=store,
        hosts=LOOPBACK_NAMES if is_loopback(host) else (),
    )
    shown = "localhost" if is_loopback(host) else host
    console.print(f"tunesmith dashboard for {runs.resolve()} at http://{shown}:{port}/", highlight=False)
    if engine is not None:
        console.print(f"playground serves {', '.join(engine.model_names())}", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
