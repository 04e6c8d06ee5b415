"""The ``tunesmith`` command: a thin dispatch table. Each command parses, calls one library function, prints."""

from __future__ import annotations

import contextlib
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tunesmith.cli import show
from tunesmith.cli.common import OverwriteOpt, ResumeOpt, SetOpt, console
from tunesmith.cli.common import load as _load
from tunesmith.cli.common import quiet_libraries as _quiet_libraries
from tunesmith.cli.monitor import monitor_app
from tunesmith.cli.tune import tune_cmd
from tunesmith.cli.ui import ui_cmd
from tunesmith.errors import ConfigError, TunesmithError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Fine-tune, evaluate and ship language models from low-resource-language data, on one CPU or GPU.",
)
data_app = typer.Typer(no_args_is_help=True, help="Stage 1: dataset preparation.")
config_app = typer.Typer(no_args_is_help=True, help="Show, check and eject run configs.")
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(monitor_app, name="monitor")
app.command("ui")(ui_cmd)
app.command("tune")(tune_cmd)


def _mode(resume: bool, overwrite: bool) -> Any:
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other.")
    return "resume" if resume else "overwrite" if overwrite else "new"


@contextmanager
def _progress():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=None if console.width >= 120 else 12),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("ETA", style="dim"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        original = progress.add_task

        def add_task(description: str, **kw: Any) -> Any:
            kw.setdefault("info", "")
            return original(description, **kw)

        progress.add_task = add_task  # type: ignore[method-assign,assignment]
        yield progress


@app.command("run")
def run_cmd(config: Path, set_: SetOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False) -> None:
    """Run stages 1-5: prepare data, fine-tune, evaluate against the base model, write the report (and export)."""
    from tunesmith.pipeline import run
    from tunesmith.train import distributed

    cfg = _load(config, set_)
    _quiet_libraries()
    if not distributed.is_main():  # another process of a multi-process launch: train quietly
        run(cfg, _mode(resume, overwrite))
        return
    with _progress() as progress:
        result = run(cfg, _mode(resume, overwrite), progress=progress, on_stage=lambda *a: show.stage(console, *a))
    show.final(console, result)


@data_app.command("prepare")
def data_prepare(
    config: Path,
    set_: SetOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail if any row is rejected.")] = False,
) -> None:
    """Read, validate, clean and split the data; write data/ (splits, manifest, rejects, card) in the run dir."""
    from tunesmith.data.prepare import card_tokenizer, prepare_data
    from tunesmith.pipeline import start_run

    cfg = _load(config, [*(set_ or []), *(["data.strict=true"] if strict else [])])
    run = start_run(cfg, _mode(resume, overwrite))
    show.stage(
        console, "data", prepare_data(cfg.data, run, seed=cfg.seed, tokenizer=card_tokenizer(cfg.model.base)), run
    )


def _columns(pairs: list[str] | None) -> dict[str, str]:
    """``--column text=tweet`` options as a field -> column map."""
    out = {}
    for pair in pairs or []:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ConfigError(f"--column takes field=column (e.g. text=tweet), not '{pair}'.")
        out[field.strip()] = column.strip()
    return out


@data_app.command("align")
def data_align(
    source: Annotated[Path, typer.Argument(help="Source-language text file, one sentence per line.")],
    target: Annotated[Path, typer.Argument(help="Target-language text file, line i translating line i.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL of parallel records to write.")],
    langs: Annotated[
        tuple[str, str], typer.Option("--langs", help="Source and target language codes, e.g. eng hau.")
    ] = ("src", "tgt"),
    doc_ids: Annotated[Path | None, typer.Option("--doc-ids", help="File of document ids, one per line.")] = None,
) -> None:
    """Pair two line-aligned files (Moses/NTREX style) into parallel records for `data.format: parallel`."""
    from tunesmith.data.align import align_files, write_aligned

    n = write_aligned(align_files(source, target, langs[0], langs[1], doc_ids), out)
    console.print(f"{n} sentence pairs -> {out} (data.format: parallel; data.convert: instructions for SFT)")


@data_app.command("inspect")
def data_inspect(
    files: Annotated[list[Path], typer.Argument(help="Data files or folders; each is a split named by its stem.")],
    kind: Annotated[str, typer.Option("--kind", help="Record kind; auto detects it from the columns.")] = "auto",
    column: Annotated[list[str] | None, typer.Option("--column", help="Map a field to a column: text=tweet")] = None,
    paragraphs: Annotated[bool, typer.Option("--paragraphs", help=".txt: one document per paragraph")] = False,
    tokenizer: Annotated[
        str | None, typer.Option("--tokenizer", help="tokenizer.json, its folder or a model name: adds fertility")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the card (JSON) to this file.")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the card (HTML) to this file.")] = None,
) -> None:
    """Profile data files without a config: kind, languages, scripts, CMI, duplicates, leaks, lengths, labels."""
    from tunesmith.data.card import render_card
    from tunesmith.data.inspect import inspect_files
    from tunesmith.rundir import atomic_write_text, write_json

    text_mode = "paragraph" if paragraphs else "line"
    with console.status("profiling"):
        result = inspect_files(files, kind=kind, columns=_columns(column), text_mode=text_mode, tokenizer=tokenizer)
    show.inspect(console, result)
    if json_out:
        write_json(json_out, result)
        console.print(f"wrote {json_out}")
    if html_out:
        atomic_write_text(html_out, render_card(result, f"data card: {', '.join(f.name for f in files)}"))
        console.print(f"wrote {html_out}")


def _attach(target: Path, overrides: list[str] | None) -> tuple[Any, Any]:
    """The config and run dir that the main process set up (a non-main training process writes nothing)."""
    from tunesmith.pipeline import run_dir_for
    from tunesmith.rundir import RunDir

    if target.is_dir():
        return _load(target / "config.yaml", None), RunDir(target)
    cfg = _load(target, overrides)
    return cfg, RunDir(run_dir_for(cfg))


def _config_and_run(target: Path, overrides: list[str] | None, mode: Any) -> tuple[Any, Any]:
    """A run dir (uses its recorded config.yaml) or a config file (opens its run dir)."""
    from tunesmith.pipeline import start_run
    from tunesmith.rundir import RunDir

    if target.is_dir():
        if not (target / "config.yaml").is_file():
            raise ConfigError(f"{target} is a directory without config.yaml: not a run directory.")
        cfg = _load(target / "config.yaml", overrides)
        if overrides:  # the run dir records the config that produced its outputs
            from tunesmith.config.load import dump_config
            from tunesmith.rundir import atomic_write_text

            atomic_write_text(target / "config.yaml", dump_config(cfg))
        return cfg, RunDir(target)
    return (cfg := _load(target, overrides)), start_run(cfg, mode)


@app.command("train")
def train_cmd(
    target: Annotated[Path, typer.Argument(help="CONFIG file or RUN_DIR")],
    set_: SetOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Stages 3-4: fine-tune (prepares the data first when the run dir has none)."""
    from tunesmith.data.prepare import card_tokenizer, prepare_data
    from tunesmith.train import distributed
    from tunesmith.train.recipe import train

    mode = _mode(resume, overwrite)
    with distributed.main_first() as main:  # under torchrun / accelerate launch only the main process writes
        if not main:
            cfg, run = _attach(target, set_)
        else:
            cfg, run = _config_and_run(target, set_, mode)
            if target.is_dir() and run.checkpoints.exists() and mode == "new":
                raise ConfigError(
                    f"{run.root} already has checkpoints: pass --resume to continue or --overwrite to retrain."
                )
            if target.is_dir() and mode == "overwrite":
                for path in (run.checkpoints, run.adapter, run.model, run.metrics, run.train_summary):
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            if not run.manifest.is_file():
                show.stage(
                    console,
                    "data",
                    prepare_data(cfg.data, run, seed=cfg.seed, tokenizer=card_tokenizer(cfg.model.base)),
                    run,
                )
    _quiet_libraries()
    with _progress() if main else contextlib.nullcontext() as progress:
        summary = train(cfg, run, resume=mode == "resume", progress=progress)
    if main:
        show.stage(console, "train", summary, run)


@app.command("eval")
def eval_cmd(run_dir: Path, set_: SetOpt = None) -> None:
    """Stage 5: evaluate the tuned model and the base-model baselines on the held-out split."""
    from tunesmith.eval.run import evaluate

    cfg, run = _config_and_run(run_dir, set_, "resume")
    _quiet_libraries()
    with _progress() as progress:
        report = evaluate(cfg, run, progress=progress)
    show.stage(console, "eval", report, run)


@app.command("export")
def export_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A trained run directory.")],
    to: Annotated[str, typer.Option("--to", help="hf (merged safetensors), gguf, or adapter (PEFT + card).")] = "hf",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to write (default RUN_DIR/export/TO).")
    ] = None,
    quant: Annotated[
        list[str] | None, typer.Option("--quant", help="GGUF tensor types, repeatable: f32 f16 bf16 q8_0.")
    ] = None,
    ollama: Annotated[bool, typer.Option("--ollama", help="GGUF: also write an Ollama Modelfile.")] = False,
    dtype: Annotated[str, typer.Option("--dtype", help="hf: auto (the base's), float32, bfloat16, float16.")] = "auto",
) -> None:
    """Stage 6: export the tuned model: merged HF folder, GGUF (f16/q8_0, + Ollama Modelfile) or the adapter."""
    from tunesmith.export import export_run

    _quiet_libraries()
    with console.status(f"exporting {run_dir} to {to}"):
        result = export_run(run_dir, to, out, quant, ollama, dtype)
    show.export(console, result)


def _named(
    pairs: list[str] | None, option: str, example: str = "pcm=runs/pcm-lora", form: str = "name=path"
) -> list[tuple[str, str]]:
    out = []
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{option} takes {form} (e.g. {option} {example}), not '{pair}'.")
        out.append((name.strip(), value.strip()))
    return out


def _engine_args(pairs: list[str] | None) -> dict[str, Any]:
    """``--vllm-arg KEY=VALUE`` pairs, values read as YAML scalars (numbers, true/false, lists)."""
    import yaml

    named = _named(pairs, "--vllm-arg", "gpu_memory_utilization=0.8", "KEY=VALUE")
    return {name: yaml.safe_load(value) for name, value in named}


@app.command("serve")
def serve_cmd(
    target: Annotated[str, typer.Argument(help="RUN_DIR, an exported HF folder, a .gguf file or an embedded model.")],
    adapter: Annotated[
        list[str] | None, typer.Option("--adapter", help="Serve a LoRA adapter too: name=path (repeatable).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind; non-loopback needs API keys.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key_file: Annotated[
        Path | None, typer.Option("--api-key-file", help="Accepted keys, one per line (or sha256:HEX).")
    ] = None,
    adapter_root: Annotated[
        list[Path] | None, typer.Option("--adapter-root", help="Allow /v1/load_lora_adapter under DIR (repeatable).")
    ] = None,
    dtype: Annotated[str, typer.Option(help="auto (bf16 where fast), float32, bfloat16, float16.")] = "auto",
    backend: Annotated[
        str, typer.Option(help="tunesmith (in-process batching), vllm, or auto: vllm where CUDA and vLLM are.")
    ] = "auto",
    max_lora_rank: Annotated[
        int | None, typer.Option("--max-lora-rank", help="vllm: largest LoRA rank loadable later (default 64).")
    ] = None,
    vllm_arg: Annotated[
        list[str] | None,
        typer.Option("--vllm-arg", help="vllm: an EngineArgs field as KEY=VALUE (repeatable), e.g. quantization=fp8."),
    ] = None,
    max_batch: Annotated[int, typer.Option(help="Sequences decoded together.")] = 16,
    max_waiting: Annotated[int, typer.Option(help="Queued requests before answering 429.")] = 64,
    max_tokens_limit: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for.")] = 2048,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1 << 20,
    timeout: Annotated[float, typer.Option(help="Seconds a request may run before 504.")] = 300.0,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="Allow a non-loopback host without API keys.")
    ] = False,
    store: Annotated[
        str | None,
        typer.Option(help="Request log: a SQLite file or a database URL (default for a run dir: RUN_DIR/monitor.db)."),
    ] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Log nothing.")] = False,
    privacy: Annotated[str, typer.Option(help="Logged text: redact (PII replaced), full, or hashes only.")] = "redact",
    trust_pickle: Annotated[
        bool, typer.Option("--trust-pickle", help="MODEL: also load pickle weights (.bin), which can run code.")
    ] = False,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code", help="MODEL: run the model folder's own Python modelling code (config auto_map)."
        ),
    ] = False,
) -> None:
    """Stage 6: an OpenAI-compatible server (chat, completions, streaming) with several LoRA adapters at once."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError("serving needs FastAPI and uvicorn: pip install 'tunesmith[serve]'") from None
    from tunesmith.serve.batching import EngineSettings
    from tunesmith.serve.launch import build_engine, check_exposure, read_key_hashes, request_log
    from tunesmith.serve.settings import ServerSettings

    hashes = read_key_hashes(api_key_file)
    check_exposure(host, hashes, insecure_no_auth)
    _quiet_libraries()
    with console.status(f"loading {target}"):
        engine = build_engine(
            target,
            _named(adapter, "--adapter"),
            dtype,
            EngineSettings(max_batch, max_waiting),
            trust_pickle,
            trust_remote_code,
            backend,
            max_lora_rank,
            _engine_args(vllm_arg),
        )
    settings = ServerSettings(
        api_key_hashes=hashes,
        max_body_bytes=max_body_bytes,
        max_tokens_limit=max_tokens_limit,
        request_timeout_s=timeout,
        adapter_roots=tuple(adapter_root or ()),
    )
    log = request_log(target, store, privacy, no_store)
    show.serving(console, engine.model_names(), host, port, bool(hashes), log.store.url if log else None)
    from tunesmith.serve.app import create_app

    app = create_app(engine, settings, log)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        if hasattr(engine, "close"):  # vLLM's engine process and the folder written for it
            engine.close()


@app.command("compare")
def compare_cmd(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories, each evaluated (eval/report.json).")],
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the comparison page (HTML) here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the comparison (JSON) here.")] = None,
) -> None:
    """Several runs in one table: each model's metrics with intervals, the training steps, speed and best val loss."""
    from tunesmith.eval.compare import compare_runs, render_compare_html
    from tunesmith.rundir import atomic_write_text, write_json

    result = compare_runs(run_dirs)
    show.compare(console, result)
    if json_out:
        write_json(json_out, result)
        console.print(f"wrote {json_out}")
    if html_out:
        atomic_write_text(html_out, render_compare_html(result))
        console.print(f"wrote {html_out}")


@app.command("plan")
def plan_cmd(config: Path, set_: SetOpt = None) -> None:
    """Every tuning method's parameters, memory and step cost on this model, data and machine; a recommendation."""
    from tunesmith.adapters.recommend import plan_for_config
    from tunesmith.rundir import write_json

    cfg = _load(config, set_)
    _quiet_libraries()
    with console.status("measuring the methods on this model"):
        result = plan_for_config(cfg)
    out = Path(cfg.output_dir) / cfg.name / "plan.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    show.plan(console, result, out)


@app.command("models")
def models_cmd() -> None:
    """List the embedded models (no network needed) and where their files come from."""
    from tunesmith.models.load import describe_embedded

    show.models(console, describe_embedded())


@app.command("env")
def env_cmd(seed: int = 0) -> None:
    """Print the training environment: versions, device, bf16 support, threads."""
    from tunesmith.train import env

    info = env.describe(seed, env.resolve_precision("auto"), env.set_threads(None))
    show.mapping(console, "environment", info)


@config_app.command("show")
def config_show(config: Path, set_: SetOpt = None) -> None:
    """Print the resolved config with every default filled in."""
    from tunesmith.config.load import dump_config

    sys.stdout.write(dump_config(_load(config, set_)))  # plain text: rich would wrap long lines


@config_app.command("eject")
def config_eject(preset: str, path: Path, force: bool = typer.Option(False, help="Overwrite PATH.")) -> None:
    """Copy a shipped preset to PATH for editing."""
    from tunesmith.config.load import preset_path

    source = preset_path(preset)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    console.print(f"wrote {path} (from preset '{preset}'); edit data.train and run `tunesmith run {path}`")


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage errors, and those of the click copy that newer typer releases vendor (``typer._click``)."""
    import click

    errors: list[type[Exception]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as VendoredClickException
    except ImportError:  # typer releases that use click itself
        pass
    else:
        errors.append(VendoredClickException)
    return tuple(errors)


USAGE_ERRORS = _usage_errors()


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one paragraph and exit 2; no traceback."""
    import click

    try:
        # Without standalone mode typer returns (not raises) the exit code of an interrupt (130).
        code = app(args=argv, standalone_mode=False, prog_name="tunesmith")
        if isinstance(code, int) and code:
            if code == 130:
                raise KeyboardInterrupt
            return code
    except TunesmithError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return exc.exit_code
    except USAGE_ERRORS as exc:
        exc.show()  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except (click.exceptions.Abort, KeyboardInterrupt):
        Console(stderr=True).print(
            "[bold yellow]interrupted[/]: checkpoints written so far are kept; continue with "
            "`tunesmith run CONFIG --resume` (or `tunesmith train RUN_DIR --resume`).",
            highlight=False,
        )
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
