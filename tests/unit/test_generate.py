"""Batched greedy generation: deterministic, batch-independent, equal to a cache-free loop, stops where told."""

from __future__ import annotations

import copy

import pytest
import torch

from tunesmith.data.format import chat_prompt_text, encode
from tunesmith.eval.generate import end_of_turn, generate, generate_token_ids, parse_label, trim_at_stop

PROMPTS: list[str | list[dict[str, str]]] = [
    "hello there",
    "a much longer prompt with many words in it, so the others need padding",
    "x",
    [
        {"role": "user", "content": "first turn"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "and?"},
    ],
    "the market is open today",
]


def _greedy_without_cache(model, tok, prompt, steps: int) -> list[int]:
    """Greedy decoding by full forwards over the growing sequence, no key/value cache anywhere."""
    ids = encode(tok, chat_prompt_text(tok, prompt))
    new: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([ids + new]), use_cache=False).logits
            new.append(int(logits[0, -1].argmax()))
    return new


def test_generation_with_the_cache_equals_a_cache_free_greedy_loop(tiny_model) -> None:
    model, tok = tiny_model
    got = generate_token_ids(model, tok, PROMPTS, max_new_tokens=6, batch_size=3)
    for prompt, tokens in zip(PROMPTS, got, strict=True):
        reference = _greedy_without_cache(model, tok, prompt, 6)
        assert tokens == reference[: len(tokens)]
        assert len(tokens) == 6 or reference[len(tokens)] in {tok.eos_token_id, tok.pad_token_id}


def test_the_cache_is_used_each_step_feeds_one_token(tiny_model) -> None:
    model, tok = tiny_model
    widths: list[int] = []
    embed = model.get_input_embeddings()
    handle = embed.register_forward_hook(lambda _m, args, _out: widths.append(args[0].shape[1]))
    try:
        generate_token_ids(model, tok, PROMPTS[:2], max_new_tokens=5, batch_size=2)
    finally:
        handle.remove()
    assert widths[0] > 1 and widths[1:] == [1] * 4  # the prompt once, then one new position per step


def test_batching_and_padding_do_not_change_greedy_outputs(tiny_model) -> None:
    model, tok = tiny_model
    one_by_one = generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=1)
    batched = generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=4)
    assert batched == one_by_one
    assert generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=4) == batched  # deterministic
    assert all(isinstance(text, str) for text in batched) and len(batched) == len(PROMPTS)
    # Input order is kept although batches are sorted by length.
    assert generate(model, tok, PROMPTS[::-1], max_new_tokens=12, batch_size=4) == batched[::-1]


def test_max_new_tokens_is_respected(tiny_model) -> None:
    model, tok = tiny_model
    for limit in (1, 7):
        assert all(len(t) <= limit for t in generate_token_ids(model, tok, PROMPTS, max_new_tokens=limit))
    longer = generate_token_ids(model, tok, PROMPTS, max_new_tokens=7)
    shorter = generate_token_ids(model, tok, PROMPTS, max_new_tokens=3)
    assert all(s == t[: len(s)] for s, t in zip(shorter, longer, strict=True))
    assert generate(model, tok, PROMPTS[:2], max_new_tokens=0) == ["", ""]


def test_stops_at_the_model_eos_token(tiny_model, monkeypatch) -> None:
    model, tok = tiny_model
    free = generate_token_ids(model, tok, ["hello there"], max_new_tokens=12)[0]
    stop_token = next(t for i, t in enumerate(free) if i >= 2 and t not in free[:i])
    monkeypatch.setattr(model.generation_config, "eos_token_id", [tok.eos_token_id, stop_token])
    assert generate_token_ids(model, tok, ["hello there"], max_new_tokens=12)[0] == free[: free.index(stop_token)]


@pytest.mark.parametrize("method", [None, "prompt"])
def test_stop_strings_end_generation_and_trim_the_text(tiny_model, method: str | None) -> None:
    model, tok = tiny_model
    model = _peft(model, method) if method else model
    free = generate(model, tok, ["hello there"], max_new_tokens=20)[0]
    stop = next(free[i : i + 2] for i in range(3, len(free) - 2) if free[i : i + 2].isalpha())
    stopped = generate(model, tok, ["hello there"], max_new_tokens=20, stop=[stop])[0]
    assert stopped == free[: free.index(stop)].strip()
    assert len(generate_token_ids(model, tok, ["hello there"], max_new_tokens=20, stop=[stop])[0]) < 20


def test_end_of_turn_token_of_the_template(assets) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(assets / "tiny-tokenizer")
    assert end_of_turn(tok) == (tok.convert_tokens_to_ids("<|im_end|>"), None)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n### end\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    assert end_of_turn(tok) == (None, "### end")  # a plain-text marker becomes a stop string


def _peft(model, method: str):
    from peft import LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, get_peft_model

    configs = {
        "lora": LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
        "prompt": PromptTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM"),
        "ptuning": PromptEncoderConfig(num_virtual_tokens=3, encoder_hidden_size=16, task_type="CAUSAL_LM"),
        "prefix": PrefixTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM"),
    }
    torch.manual_seed(0)
    return get_peft_model(copy.deepcopy(model), configs[method]).eval()


@pytest.mark.parametrize("method", ["lora", "prompt", "ptuning", "prefix"])
def test_peft_wrapped_models_generate_batch_independently(tiny_model, method: str) -> None:
    model, tok = tiny_model
    peft_model = _peft(model, method)
    batched = generate(peft_model, tok, PROMPTS, max_new_tokens=8, batch_size=4)
    assert batched == generate(peft_model, tok, PROMPTS, max_new_tokens=8, batch_size=1)
    base = generate(model, tok, PROMPTS, max_new_tokens=8, batch_size=4)
    if method == "lora":  # B starts at zero: the adapter changes nothing yet
        assert batched == base
    else:  # the virtual tokens are used
        assert batched != base


@pytest.mark.parametrize("method", ["prompt", "ptuning", "prefix"])
def test_virtual_token_generation_equals_the_training_forward(tiny_model, method: str) -> None:
    """The cached greedy loop for prompt-learning methods picks the tokens the training computation
    (decoder_hidden over the whole sequence, no cache) ranks first."""
    from tunesmith.adapters.prompting import decoder_hidden
    from tunesmith.train.sft.loss import causal_parts

    model, tok = tiny_model
    peft_model = _peft(model, method)
    decoder, head = causal_parts(peft_model)
    got = generate_token_ids(peft_model, tok, PROMPTS, max_new_tokens=5, batch_size=4)
    for prompt, tokens in zip(PROMPTS, got, strict=True):
        ids = encode(tok, chat_prompt_text(tok, prompt))
        for k, token in enumerate(tokens):
            with torch.no_grad():
                hidden = decoder_hidden(peft_model, decoder, torch.tensor([ids + tokens[:k]]), None)
            assert int(head(hidden[0, -1]).argmax()) == token


def test_progress_advances_once_per_prompt(tiny_model) -> None:
    class Progress:
        def __init__(self) -> None:
            self.total, self.done = 0, 0

        def add_task(self, _description: str, total: int) -> int:
            self.total = total
            return 0

        def advance(self, _task: int, n: int) -> None:
            self.done += n

    model, tok = tiny_model
    progress = Progress()
    generate(model, tok, PROMPTS, max_new_tokens=2, batch_size=2, progress=progress)
    assert progress.total == progress.done == len(PROMPTS)


def test_trim_at_stop() -> None:
    assert trim_at_stop("answer\nQuestion: more", ["\n", "Question:"]) == "answer"
    assert trim_at_stop("no stop here", ["###"]) == "no stop here"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Positive", "positive"),
        ("The sentiment is NEGATIVE.", "negative"),
        ("positive, not negative", "positive"),
        ("It is not negative; positive overall", "negative"),  # the earliest mention wins
        ("very negative indeed", "very negative"),  # same position: the longest label
        ("neutrality is not a label", None),  # whole words only
        ("", None),
        ("Sentiment: neutral", "neutral"),
    ],
)
def test_parse_label(text: str, expected: str | None) -> None:
    assert parse_label(text, ["positive", "negative", "neutral", "very", "very negative"]) == expected


def test_parse_label_other_scripts() -> None:
    assert parse_label("Amsa: ƙarya ce", ["gaskiya", "ƙarya"]) == "ƙarya"
    assert parse_label("ƙaryata", ["ƙarya"]) is None  # a letter of any script ends a word
