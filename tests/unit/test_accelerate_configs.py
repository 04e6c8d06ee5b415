"""The shipped accelerate configs load with accelerate's own reader and say what their names promise."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
EXPECTED = {  # file -> (distributed type, machines, the setting that makes it what it is)
    "cpu-2proc.yaml": ("MULTI_GPU", 1, ("num_processes", 2)),
    "multi-gpu-ddp.yaml": ("MULTI_GPU", 1, ("mixed_precision", "bf16")),
    "multi-node-ddp.yaml": ("MULTI_GPU", 2, ("main_process_port", 29500)),
    "fsdp.yaml": ("FSDP", 1, ("fsdp_config", "fsdp_auto_wrap_policy")),
    "deepspeed-zero2.yaml": ("DEEPSPEED", 1, ("deepspeed_config", 2)),
    "deepspeed-zero3-offload.yaml": ("DEEPSPEED", 1, ("deepspeed_config", 3)),
}


def test_every_shipped_config_is_listed() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_with_accelerate(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / name))
    kind, machines, (key, value) = EXPECTED[name]
    assert config.distributed_type.value == kind and config.num_machines == machines
    assert config.num_processes >= 2 * machines
    if key == "deepspeed_config":
        assert config.deepspeed_config["zero_stage"] == value
        offload = config.deepspeed_config["offload_optimizer_device"]
        assert offload == ("cpu" if "offload" in name else "none")
    elif key == "fsdp_config":
        assert value in config.fsdp_config
    else:
        assert getattr(config, key) == value
