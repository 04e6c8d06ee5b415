"""Feedback -> the next round's training data, in the data stage's record formats.

Each kind of feedback becomes the records it honestly supports:

- ``choice`` of answer *i* among n: a ``choice`` record {prompt, candidates, chosen}, and ``preference``
  pairs of answer i over each other answer;
- ``ranking`` (answer indices, best first): a ``ranking`` record {prompt, responses, ranks}, and
  ``preference`` pairs for every ranked pair;
- ``correction``: ``preference`` (the correction over the model's answer), ``unpaired`` (the answer bad,
  the correction good) and ``sft`` (the chat with the correction as the answer);
- ``thumbs`` up / down: ``unpaired`` {prompt, response, label} (KTO), and ``sft`` for thumbs-up answers;
- ``rating``: ``rating`` {prompt, response, score} (reward model regression);
- ``comparison`` (this request's answer beat another request's, same prompt, often another model: the
  dashboard's side-by-side playground): a ``preference`` pair {prompt, chosen, rejected, rejected_model}.

Thumbs and ratings judge the request's first answer (the only one unless the client asked for ``n``).
Feedback that cannot become a record (its request is not in the log, the log kept only hashes, an index
past the answers) goes to ``rejects.jsonl`` with the reason: rows in = rows written + rows rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

KINDS = ("preference", "unpaired", "sft", "rating", "ranking", "choice")


def _messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
        return [{"role": m["role"], "content": m.get("content") or ""} for m in prompt]
    text = prompt[0] if isinstance(prompt, list) else prompt
    return [{"role": "user", "content": str(text)}]


def prompt_text(messages: list[dict[str, str]]) -> str:
    """The prompt field of a feedback record: the user's text for a one-turn chat, else an HH-RLHF dialogue
    (``Human:``/``Assistant:`` turns, which the data stage reads back as chat messages). System messages have
    no place in either and are left out (the server's own system prompt is the template's anyway)."""
    turns = [m for m in messages if m["role"] in ("user", "assistant")]
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    parts = [f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in turns]
    return ("".join(parts) + "\n\nAssistant:").lstrip()


def _comparison(
    base: dict[str, Any], chat: list[dict[str, str]], answer: str, other: dict[str, Any] | None
) -> tuple[dict[str, list], str | None]:
    if other is None:
        return {}, "the request it was compared with is not in the log"
    if other.get("prompt") is None or other.get("response") is None:
        return {}, "the log kept only hashes of the request it was compared with"
    if _messages(other["prompt"]) != chat:
        return {}, "the compared requests had different prompts"
    rejected = next(iter(other["response"]))
    if rejected == answer:
        return {}, "both answers are the same text"
    pair = {
        **base,
        "prompt": prompt_text(chat),
        "chosen": answer,
        "rejected": rejected,
        "rejected_model": other["model"],
    }
    return {"preference": [pair]}, None


def records_from(
    feedback: dict[str, Any], request: dict[str, Any] | None, requests: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, list], str | None]:
    """The records one piece of feedback yields (by kind), or the reason it yields none. ``requests`` (by id)
    holds the other side of a ``comparison``."""
    if request is None:
        return {}, "its request is not in the log"
    if request.get("prompt") is None or request.get("response") is None:
        return {}, "the log kept only hashes of this request (serve --privacy hashes)"
    chat, answers = _messages(request["prompt"]), list(request["response"])
    prompt = prompt_text(chat)
    kind, value = feedback["kind"], feedback["value"]
    base = {"request_id": request["request_id"], "model": request["model"]}
    out: dict[str, list] = {}
    if kind == "choice":
        if not 0 <= value < len(answers) or len(answers) < 2:
            return {}, f"choice {value} but the request had {len(answers)} answers"
        out["choice"] = [{**base, "prompt": prompt, "candidates": answers, "chosen": value}]
        out["preference"] = [
            {**base, "prompt": prompt, "chosen": answers[value], "rejected": a}
            for i, a in enumerate(answers)
            if i != value and a != answers[value]
        ]
    elif kind == "ranking":
        if sorted(value) != list(range(len(answers))):
            return {}, f"ranking {value} does not list the request's {len(answers)} answers once each"
        ranks = [0] * len(answers)
        for place, index in enumerate(value, 1):
            ranks[index] = place
        out["ranking"] = [{**base, "prompt": prompt, "responses": answers, "ranks": ranks}]
        out["preference"] = [
            {**base, "prompt": prompt, "chosen": answers[better], "rejected": answers[worse]}
            for i, better in enumerate(value)
            for worse in value[i + 1 :]
            if answers[better] != answers[worse]
        ]
    elif kind == "correction":
        fixed, given = str(value), answers[0]
        out["sft"] = [{**base, "messages": [*chat, {"role": "assistant", "content": fixed}]}]
        out["unpaired"] = [
            {**base, "prompt": prompt, "response": given, "label": False},
            {**base, "prompt": prompt, "response": fixed, "label": True},
        ]
        if fixed != given:
            out["preference"] = [{**base, "prompt": prompt, "chosen": fixed, "rejected": given}]
    elif kind == "thumbs":
        good = value == "up"
        out["unpaired"] = [{**base, "prompt": prompt, "response": answers[0], "label": good}]
        if good:
            out["sft"] = [{**base, "messages": [*chat, {"role": "assistant", "content": answers[0]}]}]
    elif kind == "rating":
        score = value["value"] if isinstance(value, dict) else value
        out["rating"] = [{**base, "prompt": prompt, "response": answers[0], "score": float(score)}]
    elif kind == "comparison":
        out, reason = _comparison(base, chat, answers[0], (requests or {}).get(str(value)))
        if reason:
            return {}, reason
    else:
        return {}, f"unknown feedback kind '{kind}'"
    return {k: v for k, v in out.items() if v}, None


def feedback_records(
    feedback: Iterable[dict[str, Any]], requests: dict[str, dict[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Records by kind from every piece of feedback, and the rejected feedback with reasons."""
    records: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    rejects = []
    for row in feedback:
        made, reason = records_from(row, requests.get(row["request_id"]), requests)
        if reason:
            rejects.append(
                {"feedback_id": row.get("id"), "request_id": row["request_id"], "kind": row["kind"], "reason": reason}
            )
        for kind, rows in made.items():
            records[kind].extend({**r, "feedback_id": row.get("id")} for r in rows)
    return records, rejects


def write_feedback_data(store: Any, out_dir: Path, model: str | None = None) -> dict[str, Any]:
    """Write ``<kind>.jsonl`` per record kind, ``rejects.jsonl`` and ``manifest.json`` into ``out_dir``."""
    from tunesmith.rundir import write_json, write_jsonl

    logged = {r["request_id"]: r for r in store.requests(model=model)}
    feedback = [f for f in store.feedback() if model is None or f["request_id"] in logged]
    records, rejects = feedback_records(feedback, logged)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, rows in records.items():
        if rows:
            write_jsonl(out_dir / f"{kind}.jsonl", rows)
            files[kind] = {"file": f"{kind}.jsonl", "rows": len(rows)}
    write_jsonl(out_dir / "rejects.jsonl", rejects)
    manifest = {
        "store": store.url.split("@")[-1],
        "model": model,
        "feedback": len(feedback),
        "feedback_kinds": dict(Counter(f["kind"] for f in feedback)),
        "records": files,
        "rejected": len(rejects),
        "reject_reasons": dict(Counter(r["reason"] for r in rejects)),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest
