"""Conversations: OpenAI ``messages`` and ShareGPT ``conversations`` to one canonical form, and HH-RLHF dialogues.

Chat data arrives in two common shapes, ``[{"role", "content"}]`` and ``[{"from": "human"|"gpt", "value"}]``;
training code should only ever see the first, with roles checked once here. A conversation that does not
alternate user/assistant (after an optional system prompt) and end with the assistant is not trainable as
a chat: chat templates raise on it or silently train on the wrong turns, so it is rejected with the turn.

Functions raise ``ValueError`` with a one-line reason; :mod:`tunesmith.data.records` turns that into a reject.
"""

from __future__ import annotations

import json
import re
from typing import Any

ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}
HH_HUMAN = "\n\nHuman:"
HH_ASSISTANT = "\n\nAssistant:"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def as_list(value: Any) -> list[Any]:
    """A list field, also when a CSV/TSV cell holds it as JSON text (``'["a", "b"]'``)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"holds text that starts like a JSON list but is not one ({exc})") from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _content(value: Any, where: str) -> str:
    """Message content: a string, or OpenAI content parts of ``{"type": "text", "text": ...}`` joined."""
    if isinstance(value, list):
        parts = []
        for part in value:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise ValueError(f"{where}: only text content parts are supported, got {str(part)[:60]!r}")
            parts.append(part["text"])
        value = "".join(parts)
    if not isinstance(value, str):
        raise ValueError(f"{where}: content must be text, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{where}: empty content")
    return value


def check_turn_order(messages: list[dict[str, str]]) -> None:
    """Optional system prompt first, then user and assistant alternating, ending with the assistant.

    Raises:
        ValueError: naming the first message (1-based) that breaks the order.
    """
    roles = [m["role"] for m in messages]
    start = 1 if roles and roles[0] == "system" else 0
    if start == len(roles):
        raise ValueError("the conversation has no user turn")
    for i in range(start, len(roles)):
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if roles[i] == expected:
            continue
        if roles[i] == "system":
            raise ValueError(f"message {i + 1}: a system prompt is only allowed as the first message")
        after = f"after a {roles[i - 1]} turn" if i > start else "first (after any system prompt)"
        article = "an" if expected == "assistant" else "a"
        raise ValueError(f"message {i + 1}: expected {article} {expected} turn {after}, got {roles[i]}")
    if roles[-1] != "assistant":
        raise ValueError(f"the conversation ends with a {roles[-1]} turn; training needs it to end with the assistant")


def normalize_messages(value: Any) -> list[dict[str, str]]:
    """Canonical ``[{"role": "system"|"user"|"assistant", "content": str}]`` from OpenAI or ShareGPT turns.

    Extra keys (``name``, ``weight``) are dropped: no trainer here uses them, and keeping them would make
    records of the same kind differ in shape.
    """
    items = as_list(value)
    if not items:
        raise ValueError("the conversation is empty")
    out: list[dict[str, str]] = []
    for i, msg in enumerate(items, start=1):
        where = f"message {i}"
        if not isinstance(msg, dict):
            raise ValueError(f"{where} is {type(msg).__name__}, not an object")
        if "role" in msg or "content" in msg:
            role, content = msg.get("role"), msg.get("content")
        elif "from" in msg or "value" in msg:
            role, content = msg.get("from"), msg.get("value")
        else:
            raise ValueError(f"{where} has neither role/content (OpenAI) nor from/value (ShareGPT) keys")
        name = role.strip().lower() if isinstance(role, str) else None
        if name not in ROLES:
            raise ValueError(f"{where}: unknown role {role!r} (known: {', '.join(ROLES)})")
        out.append({"role": ROLES[name], "content": _content(content, f"{where} ({ROLES[name]})")})
    check_turn_order(out)
    return out


def split_hh_pair(chosen: str, rejected: str) -> tuple[str, str, str]:
    """``(prompt, chosen, rejected)`` from two HH-RLHF dialogues that differ only in the final answer.

    The prompt is the shared text up to and including the last ``"\\n\\nAssistant:"`` that both dialogues
    contain (the longest common prefix cut at a turn marker), so the few upstream pairs with irregular
    markers still split at the point where they diverge instead of being dropped.

    Raises:
        ValueError: no shared assistant turn, or nothing left of an answer after the split.
    """
    pairs = enumerate(zip(chosen, rejected, strict=False))
    shared = next((i for i, (a, b) in pairs if a != b), min(len(chosen), len(rejected)))
    cut = chosen.rfind(HH_ASSISTANT, 0, shared)
    if cut < 0:
        raise ValueError(
            "no prompt column, and chosen/rejected are not HH-RLHF dialogues sharing a "
            "'\\n\\nHuman: ... \\n\\nAssistant:' prefix"
        )
    end = cut + len(HH_ASSISTANT)
    prompt, good, bad = chosen[:end].lstrip(), chosen[end:].strip(), rejected[end:].strip()
    for name, answer in (("chosen", good), ("rejected", bad)):
        if not answer:
            raise ValueError(f"the {name} answer is empty after splitting off the shared HH-RLHF prompt")
    return prompt, good, bad


def parse_hh_dialogue(text: str) -> list[dict[str, str]]:
    """An HH-RLHF dialogue (``"Human: ...\\n\\nAssistant: ..."``) as canonical messages.

    A trailing empty ``Assistant:`` (where a prompt ends) is dropped, so the result of a prompt ends with
    the user turn, ready for a chat template's generation prompt.
    """
    text = text if text.startswith("\n\n") else "\n\n" + text
    parts = _HH_TURN.split(text)
    messages = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        role = "user" if speaker == "Human" else "assistant"
        if content.strip():
            messages.append({"role": role, "content": content.strip()})
    return messages
