"""Few-shot prompting as a tuning method: no weights change; k solved examples go in front of each query.

"Training" picks the demonstrations from the training split and saves them as ``adapter/fewshot.json``;
evaluation (and later serving) loads that artifact the way it loads an adapter and renders every query as a
chat whose earlier turns are the demonstrations. Two selections:

- ``balanced``: the same k examples for every query, drawn round-robin over the labels with a fixed seed;
- ``similar``: for each query the k training examples closest to it by the embedded MiniLM sentence encoder
  (mean-pooled, cosine), most similar last (nearest the query).

For the smallest datasets this is the honest alternative to training: the planner recommends it when there
are too few labelled rows to train on, and evaluation reports it beside the trained methods.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from tunesmith.config.schema import FewshotMethod

SAVES_ADAPTER = True
TRAINS = False
ARTIFACT = "fewshot.json"
POOL_LIMIT = 5000  # training rows kept for similarity search


def balanced(rows: list[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    """k rows drawn round-robin over the labels (seeded); fewer when the split has fewer rows."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_label[r.get("label", "")].append(r)
    rng = random.Random(seed)
    for group in by_label.values():
        rng.shuffle(group)
    picked: list[dict[str, Any]] = []
    labels = sorted(by_label)
    while len(picked) < k and any(by_label.values()):
        for label in labels:
            if by_label[label] and len(picked) < k:
                picked.append(by_label[label].pop())
    rng.shuffle(picked)
    return picked


def _demo(row: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": row["prompt"], "completion": row["completion"], "label": row.get("label")}


def fit(train_rows: list[dict[str, Any]], config: FewshotMethod, seed: int) -> dict[str, Any]:
    """The artifact: the chosen demonstrations (balanced) or the pool to choose from (similar)."""
    if not train_rows or "completion" not in train_rows[0]:
        raise ValueError("fewshot needs supervised rows (a prompt and its answer): classification or instructions")
    artifact: dict[str, Any] = {"method": "fewshot", "k": config.k, "select": config.select, "seed": seed}
    if config.select == "balanced":
        artifact["demonstrations"] = [_demo(r) for r in balanced(train_rows, config.k, seed)]
    else:
        pool = train_rows if len(train_rows) <= POOL_LIMIT else random.Random(seed).sample(train_rows, POOL_LIMIT)
        artifact["pool"] = [_demo(r) for r in pool]
        artifact["encoder"] = config.encoder
    return artifact


def save_artifact(artifact: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ARTIFACT).write_text(json.dumps(artifact, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


class Demonstrations:
    """Turns each query prompt into chat messages with its demonstrations in front."""

    def __init__(self, artifact: dict[str, Any]) -> None:
        self.artifact = artifact
        self._pool_vectors: Any = None
        self._encoder: Any = None

    def messages(self, prompts: list[str]) -> list[list[dict[str, str]]]:
        if self.artifact["select"] == "balanced":
            demos = [self.artifact["demonstrations"]] * len(prompts)
        else:
            demos = self._nearest(prompts)
        out = []
        for prompt, chosen in zip(prompts, demos, strict=True):
            turns: list[dict[str, str]] = []
            for d in chosen:
                turns += [{"role": "user", "content": d["prompt"]}, {"role": "assistant", "content": d["completion"]}]
            out.append([*turns, {"role": "user", "content": prompt}])
        return out

    def _nearest(self, prompts: list[str]) -> list[list[dict[str, Any]]]:
        import torch

        pool = self.artifact["pool"]
        if self._pool_vectors is None:
            self._encoder = SentenceEncoder(self.artifact["encoder"])
            self._pool_vectors = self._encoder.encode([d["prompt"] for d in pool])
        queries = self._encoder.encode(prompts)
        k = min(self.artifact["k"], len(pool))
        top = torch.topk(queries @ self._pool_vectors.T, k, dim=1).indices  # most similar first
        return [[pool[int(i)] for i in reversed(row)] for row in top]  # most similar nearest the query


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an encoder (the embedded MiniLM by default)."""

    def __init__(self, name: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        from tunesmith.models.load import local_directory, resolve

        directory = local_directory(resolve(name))
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = AutoModel.from_pretrained(directory).eval()

    def encode(self, texts: list[str], batch: int = 64) -> Any:
        import torch

        vectors = []
        with torch.no_grad():
            for i in range(0, len(texts), batch):
                enc = self.tokenizer(
                    texts[i : i + batch], padding=True, truncation=True, max_length=256, return_tensors="pt"
                )
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                vectors.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(vectors)


def apply(model: Any, config: FewshotMethod) -> Any:
    raise ValueError("fewshot trains nothing: its demonstrations are chosen by tunesmith train, not applied")


def save(model: Any, out_dir: Path) -> None:
    save_artifact(model.tunesmith_fewshot.artifact, Path(out_dir))


def load(base_model: Any, out_dir: Path) -> Any:
    """The base model, carrying the demonstrations that scoring puts in front of each query."""
    artifact = json.loads((Path(out_dir) / ARTIFACT).read_text(encoding="utf-8"))
    base_model.tunesmith_fewshot = Demonstrations(artifact)
    return base_model
