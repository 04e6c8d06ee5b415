"""Formatting: records -> (prompt, completion) text through Jinja templates -> token ids with a loss mask.

Templates are data files (``data/templates/*.jinja``), not code. A causal LM is trained on the chat
rendering of ``[user: prompt, assistant: completion]``; the prompt part is tokenised on its own and the
completion part on its own, so evaluation can score a label after exactly the prompt ids training saw.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from tunesmith.errors import ConfigError, DataError

TEMPLATES_DIR = Path(__file__).parent / "templates"
IGNORE_INDEX = -100


@lru_cache(maxsize=32)
def load_template(name_or_path: str) -> jinja2.Template:
    """A shipped template by name, or a Jinja file by path; undefined fields are errors, not blanks."""
    path = Path(name_or_path)
    if not path.is_file():
        path = TEMPLATES_DIR / f"{name_or_path}.jinja"
    if not path.is_file():
        shipped = sorted(p.stem for p in TEMPLATES_DIR.glob("*.jinja") if p.stem != "chat_fallback")
        raise ConfigError(
            f"Template '{name_or_path}' is neither a file nor a shipped template ({', '.join(shipped)})."
        )
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
    try:
        return env.from_string(path.read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}: template syntax error: {exc.message}.") from None


def render_prompt(record: dict[str, Any], template: jinja2.Template, labels: list[str]) -> str:
    """The prompt text of a classification record."""
    context = {**record.get("groups", {}), **{k: v for k, v in record.items() if k not in ("groups", "source")}}
    try:
        return template.render(labels=labels, **context).strip()
    except jinja2.UndefinedError as exc:
        src = record.get("source", {})
        raise DataError(f"{src.get('file')}:{src.get('line')}: template needs a field the row lacks: {exc}.") from None


def _prompt_messages(prompt: str) -> str | list[dict[str, str]]:
    """An HH-RLHF style dialogue prompt as chat messages; any other prompt unchanged."""
    from tunesmith.data.dialogue import parse_hh_dialogue

    if "\n\nHuman:" in prompt or prompt.startswith("Human:"):
        return parse_hh_dialogue(prompt)
    return prompt


def to_example(
    record: dict[str, Any], kind: str, template: jinja2.Template | None, labels: list[str]
) -> dict[str, Any]:
    """The fields training and evaluation read, added to a record.

    Supervised kinds get ``{prompt, completion}`` (a chat's prompt is its turns before the last answer, a
    list of messages; training reads the whole ``messages`` list), raw text ``{text}``, preference pairs
    ``{prompt, chosen, rejected}`` and unpaired feedback ``{prompt, completion, label}``. Kinds that only
    become trainable after ``data.convert`` (parallel, ranking, rating, choice) add nothing.
    """
    if kind == "classification":
        assert template is not None
        return {"prompt": render_prompt(record, template, labels), "completion": record["label"]}
    if kind == "instruction":
        prompt = record["instruction"].strip()
        if record.get("input", "").strip():
            prompt = f"{prompt}\n\n{record['input'].strip()}"
        return {"prompt": prompt, "completion": record["output"]}
    if kind == "prompt_completion":
        return {"prompt": record["prompt"], "completion": record["completion"]}
    if kind == "messages":
        turns = record["messages"]
        return {"prompt": turns[:-1], "completion": turns[-1]["content"]}
    if kind == "preference":
        return {
            "prompt": _prompt_messages(record["prompt"]),
            "chosen": record["chosen"],
            "rejected": record["rejected"],
        }
    if kind == "unpaired":
        return {
            "prompt": _prompt_messages(record["prompt"]),
            "completion": record["response"],
            "label": record["label"],
        }
    if kind == "text":
        return {"text": record["text"]}
    return {}


def chat_prompt_text(tokenizer: Any, prompt: str | list[dict[str, str]]) -> str:
    """The chat rendering of a user turn (or of a conversation ending in one: few-shot demonstrations as
    earlier turns), ending where the assistant's answer starts."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def chat_completion_text(tokenizer: Any, prompt: str | list[dict[str, str]], completion: str) -> str:
    """The text that follows the prompt rendering in the full chat (answer plus end-of-turn markers)."""
    head = chat_prompt_text(tokenizer, prompt)
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": completion}], tokenize=False)
    if not full.startswith(head):
        raise DataError(
            "The chat template renders the prompt differently with and without the answer; "
            "set model.chat_template to a template whose generation prompt is a prefix of the full chat."
        )
    return full[len(head) :]


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_messages(messages: list[dict[str, str]], tokenizer: Any, loss_on: str) -> dict[str, list[int]]:
    """Token ids and labels of a whole multi-turn chat.

    The chat is rendered turn by turn: each assistant answer is the text the full rendering adds after the
    generation prompt of the turns before it, so the labels cover exactly the answers (and their
    end-of-turn markers). ``loss_on``: ``completion`` labels every assistant turn, ``last_turn`` only the
    final one, ``all`` every token.

    Raises:
        DataError: the chat template renders earlier turns differently once later turns follow.
    """
    ids: list[int] = []
    labels: list[int] = []
    rendered = ""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        head = chat_prompt_text(tokenizer, messages[:i])
        full = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (head.startswith(rendered) and full.startswith(head)):
            raise DataError(
                "The chat template renders earlier turns differently once later turns follow, so answers cannot "
                "be located; set model.chat_template to a template whose renderings extend each other."
            )
        before, answer = encode(tokenizer, head[len(rendered) :]), encode(tokenizer, full[len(head) :])
        labelled = loss_on in ("all", "completion") or i == last
        ids += before + answer
        labels += (before if loss_on == "all" else [IGNORE_INDEX] * len(before)) + (
            answer if labelled else [IGNORE_INDEX] * len(answer)
        )
        rendered = full
    return {"input_ids": ids, "labels": labels}


def tokenize_example(example: dict[str, Any], tokenizer: Any, loss_on: str) -> dict[str, list[int]]:
    """Token ids and labels (``-100`` where no loss is taken) for one example.

    Chats (``messages``): every assistant turn is labelled (see :func:`tokenize_messages`). Other
    supervised examples: prompt ids then completion ids; with ``loss_on`` ``completion`` or ``last_turn``
    only the completion carries labels. Raw text: every token is labelled, with BOS/EOS where the
    tokenizer has them.
    """
    if "messages" in example:
        return tokenize_messages(example["messages"], tokenizer, loss_on)
    if "prompt" not in example:
        ids = encode(tokenizer, example["text"])
        if tokenizer.bos_token_id is not None:
            ids = [tokenizer.bos_token_id, *ids]
        if tokenizer.eos_token_id is not None:
            ids = [*ids, tokenizer.eos_token_id]
        return {"input_ids": ids, "labels": list(ids)}
    prompt_ids = encode(tokenizer, chat_prompt_text(tokenizer, example["prompt"]))
    completion_ids = encode(tokenizer, chat_completion_text(tokenizer, example["prompt"], example["completion"]))
    ids = prompt_ids + completion_ids
    labels = list(ids) if loss_on == "all" else [IGNORE_INDEX] * len(prompt_ids) + completion_ids
    return {"input_ids": ids, "labels": labels}


def chunk_example(example: dict[str, list[int]], max_length: int) -> list[dict[str, list[int]]]:
    """Cut a raw-text example into consecutive pieces of at most ``max_length`` tokens (nothing dropped)."""
    ids, labels = example["input_ids"], example["labels"]
    return [
        {"input_ids": ids[i : i + max_length], "labels": labels[i : i + max_length]}
        for i in range(0, len(ids), max_length)
    ]
