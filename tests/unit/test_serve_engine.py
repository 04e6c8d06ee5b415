"""The batching engine: batched answers equal one-by-one answers, rows join and leave, adapters route per row."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from serve_helpers import greedy, load_plain, make_adapter, run_all
from tunesmith.serve.adapters import AdapterPool, adapter_folder, check_name
from tunesmith.serve.batching import BatchingEngine, EngineSettings
from tunesmith.serve.engine import GenerationRequest, QueueFull, SamplingParams, UnknownModel
from tunesmith.serve.kvbatch import KVBatch
from tunesmith.serve.sampling import TextTail, next_tokens, nucleus

PROMPTS = ["hello there", "the cat sat on the mat and", "a", "ẹ kú àárọ̀ o", "one two three four five six"]


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {name: make_adapter(tiny_model_dir, root / name, seed) for seed, name in enumerate(["alpha", "beta"])}


def reference(model, tokenizer, prompt: str, max_new: int) -> str:
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(
        ids,
        max_new_tokens=max_new,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_rows_joining_and_leaving_a_batch_answer_as_if_alone(tiny_model_dir: Path) -> None:
    model, tokenizer = load_plain(tiny_model_dir)
    engine = BatchingEngine(
        AdapterPool(model, "tiny"), tokenizer, [tokenizer.eos_token_id], EngineSettings(max_batch=3)
    )
    engine.start()
    try:  # 5 requests of different lengths through 3 rows: rows finish at different steps and others take over
        lengths = [6 + 3 * i for i in range(len(PROMPTS))]
        requests = [
            greedy(tokenizer, p, "tiny", n, f"r{i}") for i, (p, n) in enumerate(zip(PROMPTS, lengths, strict=True))
        ]
        results = run_all(engine, requests)
    finally:
        engine.shutdown()
    for i, (prompt, n) in enumerate(zip(PROMPTS, lengths, strict=True)):
        text, finish, tokens = results[f"r{i}"]
        assert text == reference(model, tokenizer, prompt, n)
        assert (finish, tokens) == ("length", n)
    assert engine.counters["decode_steps"] < sum(lengths)  # rows were decoded together, not one after another
    assert engine.stats()["active"] == 0 and engine.stats()["waiting"] == 0


def test_seeded_sampling_does_not_depend_on_batch_companions(tiny_model_dir: Path) -> None:
    model, tokenizer = load_plain(tiny_model_dir)
    engine = BatchingEngine(AdapterPool(model, "tiny"), tokenizer, [tokenizer.eos_token_id])
    ids = tokenizer("hello there", add_special_tokens=False)["input_ids"]
    params = SamplingParams(max_tokens=12, temperature=1.0, top_p=0.9, seed=7)
    engine.start()
    try:
        alone = run_all(engine, [GenerationRequest("a", "tiny", ids, params)])["a"]
        crowd = [GenerationRequest("b", "tiny", ids, params)] + [
            greedy(tokenizer, p, "tiny", 9, f"x{i}") for i, p in enumerate(PROMPTS)
        ]
        together = run_all(engine, crowd)["b"]
        other_seed = run_all(engine, [GenerationRequest("c", "tiny", ids, SamplingParams(12, 1.0, 0.9, 8))])["c"]
    finally:
        engine.shutdown()
    assert alone == together
    assert other_seed[0] != alone[0]


def test_each_row_uses_its_own_adapter_in_one_batch(tiny_model_dir: Path, adapters: dict[str, Path]) -> None:
    from peft import PeftModel

    model, tokenizer = load_plain(tiny_model_dir)
    pool = AdapterPool(model, "tiny")
    for name, path in adapters.items():
        pool.load(name, path)
    engine = BatchingEngine(pool, tokenizer, [tokenizer.eos_token_id], EngineSettings(max_batch=8))
    requests = [greedy(tokenizer, p, m, 8, f"{m}-{i}") for i, p in enumerate(PROMPTS[:3]) for m in pool.names()]
    engine.start()
    try:
        results = run_all(engine, requests)
    finally:
        engine.shutdown()
    for name in pool.names():
        plain, _ = load_plain(tiny_model_dir)
        alone = plain if name == "tiny" else PeftModel.from_pretrained(plain, adapters[name]).merge_and_unload()
        for i, prompt in enumerate(PROMPTS[:3]):
            assert results[f"{name}-{i}"][0] == reference(alone, tokenizer, prompt, 8), (name, prompt)
    assert results["alpha-0"][0] != results["beta-0"][0] != results["tiny-0"][0]


def test_adapters_load_and_unload_and_bad_ones_are_refused(tiny_model_dir: Path, adapters, tmp_path: Path) -> None:
    model, tokenizer = load_plain(tiny_model_dir)
    pool = AdapterPool(model, "tiny")
    pool.load("alpha", adapters["alpha"])
    with pytest.raises(Exception, match="already loaded"):
        pool.load("alpha", adapters["beta"])
    with pytest.raises(Exception, match="no adapter_config.json"):
        pool.load("gamma", tmp_path)
    with pytest.raises(Exception, match="letters, digits"):
        check_name("../etc")
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "IA3"}')
    with pytest.raises(Exception, match="IA3 adapter cannot share a batch"):
        adapter_folder(tmp_path)
    pool.unload("alpha")
    assert pool.names() == ["tiny"] and not hasattr(pool.model, "peft_config")
    engine = BatchingEngine(pool, tokenizer, [tokenizer.eos_token_id])
    with pytest.raises(UnknownModel):
        engine.submit(greedy(tokenizer, "a", "alpha", 3, "x"), lambda d: None)


def test_a_full_queue_refuses_and_cancelled_rows_leave(tiny_model_dir: Path) -> None:
    model, tokenizer = load_plain(tiny_model_dir)
    pool = AdapterPool(model, "tiny")
    engine = BatchingEngine(pool, tokenizer, [tokenizer.eos_token_id], EngineSettings(max_batch=2, max_waiting=2))
    finals = {}
    for i in range(2):  # not started: both wait
        engine.submit(
            greedy(tokenizer, "a b", "tiny", 50, f"w{i}"),
            lambda d, i=i: finals.setdefault(i, d) if d.finish_reason else None,
        )
    with pytest.raises(QueueFull) as refused:
        engine.submit(greedy(tokenizer, "a", "tiny", 3, "w2"), lambda d: None)
    assert refused.value.retry_after >= 1 and engine.counters["rejected"] == 1
    engine.step(engine._take())  # both admitted and one token decoded
    engine.cancel("w0")
    engine.step([])
    assert finals[0].finish_reason == "cancelled" and engine.stats()["active"] == 1
    engine.shutdown()
    assert finals[1].finish_reason == "cancelled"


def test_next_tokens_greedy_rows_and_nucleus() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 0.0]])
    assert next_tokens(logits, [0.0, 0.0], [1.0, 1.0], [None, None]) == [1, 0]
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    kept = nucleus(probs, 0.7)  # 0.5 alone is under 0.7, so 0.3 joins; the rest go
    assert torch.allclose(kept, torch.tensor([0.625, 0.375, 0.0, 0.0]))
    assert nucleus(torch.tensor([0.9, 0.1]), 0.01).tolist() == [1.0, 0.0]


class CharTokenizer:
    """Decodes ids as UTF-8 bytes (one byte per id), like byte-level BPE splitting a character."""

    def decode(self, ids, skip_special_tokens=True) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def test_text_tail_holds_back_split_characters_and_stop_prefixes() -> None:
    tail = TextTail(CharTokenizer(), stop=["END"])
    sent = []
    for byte in "ọ ok EN".encode():
        piece, stopped = tail.push(byte)
        sent.append(piece)
        assert not stopped
    assert "".join(sent) == "ọ ok " and "\ufffd" not in "".join(sent)  # 'EN' might start END: held back
    piece, stopped = tail.push(ord("D"))
    assert stopped and piece == "" and tail.text == "ọ ok "
    other = TextTail(CharTokenizer(), stop=["END"])
    pieces = [other.push(byte)[0] for byte in b"xEN"]
    assert pieces == ["x", "", ""] and other.flush() == "EN"  # the answer ended: what was held back goes out


def test_kv_batch_pads_joins_and_trims() -> None:
    def fake_cache(rows: int, length: int, value: float):
        class Layer:
            keys = torch.full((rows, 1, length, 2), value)
            values = torch.full((rows, 1, length, 2), value)

        class Cache:
            layers = (Layer(),)

        return Cache()

    kv = KVBatch()
    kv.add(fake_cache(1, 5, 1.0), torch.ones(1, 5, dtype=torch.long))
    kv.add(fake_cache(2, 2, 2.0), torch.ones(2, 2, dtype=torch.long))
    assert kv.rows == 3 and kv.length == 5
    assert kv.mask[1].tolist() == [0, 0, 0, 1, 1] and kv.cache.layers[0].keys[1, 0, :, 0].tolist() == [0, 0, 0, 2, 2]
    mask, positions = kv.grow()
    assert positions.squeeze(-1).tolist() == [5, 2, 2] and mask.shape == (3, 6)
    kv.cache.layers[0].keys = torch.cat([kv.cache.layers[0].keys, torch.zeros(3, 1, 1, 2)], dim=2)
    kv.cache.layers[0].values = torch.cat([kv.cache.layers[0].values, torch.zeros(3, 1, 1, 2)], dim=2)
    kv.keep([1, 2])  # the long row left: its columns are padding for everyone else now
    assert kv.length == 3 and kv.mask.tolist() == [[1, 1, 1], [1, 1, 1]]
    kv.keep([])
    assert kv.rows == 0


def test_an_engine_shut_down_starts_again(tiny_model_dir: Path) -> None:
    model, tokenizer = load_plain(tiny_model_dir)
    engine = BatchingEngine(AdapterPool(model, "tiny"), tokenizer, [tokenizer.eos_token_id])
    for round_ in range(2):  # one engine behind two app lifespans, one after the other
        engine.start()
        try:
            result = run_all(engine, [greedy(tokenizer, "hello there", "tiny", 4, f"r{round_}")], timeout=20)
        finally:
            engine.shutdown()
        assert result[f"r{round_}"][1] == "length"


def test_extreme_temperatures_and_top_p_sample_without_nan() -> None:
    """Found by the HTTP fuzz test: temperature 5e-324 divided the logits into inf - inf = nan (a 500)."""
    logits = torch.tensor([[0.5, 2.0, -1.0], [30.0, 30.0, -1e9]])
    gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    assert next_tokens(logits, [5e-324, 1e-300], [1.0, 5e-324], gens) in ([1, 0], [1, 1])
    assert next_tokens(logits[:1], [2.0], [5e-324], gens[:1]) == [1]  # the tiniest top-p keeps the top token
