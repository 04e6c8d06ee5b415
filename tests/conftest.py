"""Shared fixtures: a tiny random Llama with the tiny tokenizer from tests/assets, and tiny data files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ASSETS = Path(__file__).parent / "assets"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tunesmith.models.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(ASSETS / "tiny-tokenizer", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tunesmith.models.tiny import build_tiny_encoder

    return build_tiny_encoder(ASSETS / "tiny-tokenizer", tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_model_64_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama at hidden width 64 (bitsandbytes' 4-bit CPU kernels need whole 64-wide blocks)."""
    from tunesmith.models.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(
        ASSETS / "tiny-tokenizer", tmp_path_factory.mktemp("tiny-llama-64"), hidden_size=64, intermediate_size=128
    )


@pytest.fixture(scope="session")
def tiny_encoder_64_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tunesmith.models.tiny import build_tiny_encoder

    return build_tiny_encoder(
        ASSETS / "tiny-tokenizer", tmp_path_factory.mktemp("tiny-bert-64"), hidden_size=64, intermediate_size=128
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    from tunesmith.models.load import load_model

    return load_model(str(tiny_model_dir))


def write_config(path: Path, model_dir: Path, **sections: dict) -> Path:
    """A small run config for the tiny model and the pcm test slice, with per-section overrides."""
    import yaml

    config = {
        "name": "tiny",
        "seed": 0,
        "output_dir": str(path.parent / "runs"),
        "data": {
            "train": str(ASSETS / "pcm_train.tsv"),
            "test": str(ASSETS / "pcm_test.tsv"),
            "format": "classification",
            "columns": {"text": "tweet", "label": "label"},
            "split": {"validation": 0.1},
        },
        "model": {"base": str(model_dir)},
        "method": {"name": "lora", "r": 4, "alpha": 8},
        "train": {"epochs": 2, "lr": 1e-2, "batch_tokens": 1024, "precision": "fp32", "log_every": 1},
    }
    for key, value in sections.items():
        if key != "method" and isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def make_config(tmp_path: Path, tiny_model_dir: Path):
    def make(**sections: dict) -> Path:
        return write_config(tmp_path / "config.yaml", tiny_model_dir, **sections)

    return make


@pytest.fixture(scope="session")
def tiny_lora_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A trained (not evaluated) LoRA SFT run of the tiny model on the pcm slice, for export and serving."""
    from tunesmith.cli.main import main

    root = tmp_path_factory.mktemp("lora-run")
    config = write_config(root / "config.yaml", tiny_model_dir, name="tiny-lora", train={"epochs": 1, "lr": 5e-2})
    assert main(["train", str(config)]) == 0
    return root / "runs" / "tiny-lora"


def _postgres_bin() -> Path | None:
    import glob
    import shutil

    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[::-1]), None)
    return Path(found).resolve().parent if found else None  # /usr/local/bin links only some of them


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway PostgreSQL server on a free loopback port, started from Debian's binaries (make setup
    installs the `postgresql` package when absent); the test is skipped, saying why, where there are none."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: `apt-get install postgresql` (make setup tries)")
    root = Path(tempfile.mkdtemp(prefix="tunesmith-pg-"))  # not under pytest's 0700 tmp: the server user reads it
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the package's postgres user
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
        subprocess.run(["chown", "-R", "postgres", str(root)], check=True)
        os.chmod(root, 0o755)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(root / "log.txt"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "tunesmith"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/tunesmith"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
