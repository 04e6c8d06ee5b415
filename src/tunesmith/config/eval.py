"""Stage 5's config: which baselines, which rows, and what else evaluation measures."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.section import Section


class EvalConfig(Section):
    """Stage 5: evaluation of the tuned model against the base model."""

    baselines: list[Literal["zero-shot", "one-shot", "few-shot"]] = Field(
        ["zero-shot"],
        description="Prompting baselines of the base model on the same test rows: 'zero-shot' (the query alone), "
        "'one-shot' and 'few-shot' (eval.shots demonstrations from the training split, balanced by label, "
        "fixed seed, as earlier chat turns).",
    )
    shots: int = Field(5, ge=1, description="Demonstrations in the 'few-shot' baseline.")
    generate: bool = Field(
        False,
        description="Also let every model write its answers to the test prompts (greedy, KV cache) and score "
        "them by chrF, chrF++, BLEU (sacrebleu), exact match and length ratio (instruction, prompt-completion "
        "and chat data).",
    )
    generate_rows: int = Field(100, ge=1, description="How many test rows get generated answers (generation is slow).")
    max_new_tokens: int = Field(128, ge=1, description="Longest generated answer, in tokens.")
    classify_by: Literal["likelihood", "generate"] = Field(
        "likelihood",
        description="How a causal LM picks a label: 'likelihood' scores each label after the prompt (constrained); "
        "'generate' lets it answer freely and takes the first label word in the answer (an answer naming no "
        "label counts as wrong, and the report counts them).",
    )
    encoder_baseline: bool = Field(
        False,
        description="For classification with a causal LM: also fine-tune eval.encoder_model with a classification "
        "head on the same splits (full, 3 epochs; about 2 minutes for the embedded MiniLM on a laptop CPU) and "
        "score it beside the prompting baselines and the tuned model.",
    )
    encoder_model: str = Field("all-minilm-l6-v2", description="The encoder of eval.encoder_baseline.")
    min_group_rows: int = Field(
        30, ge=1, description="Groups with fewer test rows are flagged in the breakdown, not ranked in the gap."
    )
    retention: str = Field(
        "default",
        description="Catastrophic-forgetting check: perplexity on general text and accuracy on general questions, "
        "base vs tuned. 'default' (the shipped general-English suite), 'none', or a folder with your own "
        "general_text.jsonl and general_tasks.jsonl.",
    )
    split: Literal["test", "validation"] = Field("test", description="Which prepared split to score.")
    calibration: Literal["none", "batch"] = Field(
        "none",
        description="Headline decision rule. 'none': argmax of the label log-likelihoods; 'batch': first divide "
        "out each model's label prior, estimated without gold labels from its mean label distribution on the "
        "scored rows (Zhou et al. 2023). Both are always reported; this picks the headline.",
    )
    batch_tokens: int = Field(8192, ge=16, description="Token budget of one scoring forward pass.")
    max_rows: int | None = Field(None, ge=1, description="Score at most this many rows (seeded sample).")
    groups: list[str] = Field(default_factory=list, description="Break metrics down by these group columns.")
