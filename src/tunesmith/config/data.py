"""Stage 1's config: where the data is, what kind of records it holds, and how to prepare them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.section import Section

Format = Literal[
    "auto",
    "classification",
    "instruction",
    "text",
    "prompt_completion",
    "messages",
    "parallel",
    "preference",
    "ranking",
    "rating",
    "choice",
    "unpaired",
]
Mask = Literal["urls", "users", "emails", "phones"]

# What each training objective can learn from, after any conversion (ranking/rating/choice -> preference,
# parallel -> instruction).
OBJECTIVE_KINDS: dict[str, tuple[str, ...]] = {
    "sft": ("classification", "instruction", "prompt_completion", "messages"),
    "cpt": ("text",),
    "classify": ("classification",),
    "reward": ("preference", "ranking", "rating", "choice"),
    "dpo": ("preference",),
    "orpo": ("preference",),
    "kto": ("unpaired", "preference"),
    # ppo needs prompts only: it samples its own answers
    "ppo": ("classification", "instruction", "prompt_completion", "messages", "preference", "unpaired"),
}


def converted_kind(kind: str, convert: str) -> str:
    """The record kind that training sees once ``data.convert`` has run."""
    if convert == "pairs" and kind in ("ranking", "rating", "choice"):
        return "preference"
    if convert == "instructions" and kind == "parallel":
        return "instruction"
    return kind


def check_objective_kind(objective: str, kind: str) -> None:
    """Raise ``ValueError`` (a config error) when ``objective`` cannot train on records of ``kind``."""
    usable = OBJECTIVE_KINDS.get(objective, ())
    if kind in usable or kind == "auto":
        return
    hint = {
        "parallel": "; set data.convert: instructions to train on translation instructions",
        "ranking": "; set data.convert: pairs for preference pairs",
        "rating": "; set data.convert: pairs for preference pairs (pairs whose scores differ by data.pair_margin)",
        "choice": "; set data.convert: pairs for preference pairs",
        "preference": "; train.objective reward, dpo, orpo or kto learns from preference pairs",
        "unpaired": "; train.objective kto learns from unpaired good/bad answers",
    }.get(kind, "")
    raise ValueError(
        f"train.objective {objective} learns from {', '.join(usable)} records, not {kind}{hint} "
        "(`tunesmith data prepare` and `data inspect` work on every kind)"
    )


class TaskConfig(Section):
    """How labelled rows become training text."""

    as_: Literal["instruction"] = Field(
        "instruction",
        alias="as",
        description="Cast classification rows as instructions (prompt -> label word) for a causal LM.",
    )
    template: str = Field(
        "sentiment",
        description="A shipped template name (data/templates/<name>.jinja) or a path to a Jinja file that "
        "renders the prompt from the row's fields (text, labels, and any column).",
    )


class CleanConfig(Section):
    """Cleaning steps, each a pure function that reports why it drops or changes a row."""

    normalize: Literal["nfc", "nfkc", "none"] = Field("nfc", description="Unicode normalisation form.")
    strip_control: bool = Field(True, description="Remove control and zero-width characters, collapse whitespace.")
    mask: list[Mask] = Field(
        default_factory=list,
        description="Replace personal data before training: urls -> <URL>, users -> @user, emails -> <EMAIL>, "
        "phones -> <PHONE>.",
    )
    homoglyphs: Literal["repair", "flag", "off"] = Field(
        "repair",
        description="Words mixing scripts (a Greek or Cyrillic look-alike inside a Latin word): 'repair' maps "
        "the look-alikes to Latin letters (each change is listed in changes.jsonl), 'flag' only reports them.",
    )
    dedup: Literal["exact", "none"] = Field(
        "exact", description="Drop rows whose normalised text repeats an earlier row (kept: the first)."
    )
    near_dup: float | None = Field(
        0.85,
        gt=0,
        le=1,
        description="Drop rows whose character 5-gram Jaccard similarity to an earlier row reaches this "
        "(MinHash + LSH; null: off). The same threshold finds near-duplicate leaks between splits.",
    )
    min_chars: int = Field(1, ge=0, description="Reject rows whose text is shorter than this after cleaning.")


class SplitConfig(Section):
    """How validation and test splits are made when no file is given for them."""

    validation: float = Field(0.1, ge=0, lt=1, description="Fraction of train held out for validation.")
    test: float = Field(0.1, ge=0, lt=1, description="Fraction of train held out for test (if no test file).")
    stratify: list[str] = Field(
        ["label"],
        description="Fields to stratify by: label, group columns, and 'language' (the detected language when "
        "no group column has that name).",
    )
    group_near_dups: bool = Field(
        True, description="Keep each cluster of near-duplicate rows inside one split, so none straddles two."
    )
    keep_together: str | None = Field(
        None,
        description="A group column (listed in data.groups) whose rows always share a split, e.g. the document "
        "id of sentences from one article (NTREX), so no document straddles train and test.",
    )
    min_per_stratum: int = Field(
        20, ge=0, description="Warn (in the manifest and the card) about strata with fewer rows than this in a split."
    )
    remove_leaks: bool = Field(
        True,
        description="Remove validation/test rows whose normalised text (or a near duplicate of it, see "
        "clean.near_dup) also occurs in train, so scores are not memorisation (each removal is written to "
        "rejects.jsonl).",
    )
    mark_leaks: bool = Field(
        False,
        description="Keep the validation/test rows that leak from an earlier split and tag them instead (group "
        "column `leak`: exact, near or none); evaluation then reports the whole split and, by the `leak` group, "
        "the rows not seen in training (AfriSenti pcm's test repeats many train tweets). Overrides remove_leaks.",
    )


class LanguageConfig(Section):
    """Language, script and code-mixing annotations of every row."""

    detect: bool = Field(True, description="Tag every row with its language, script and code-mixing index.")
    identifier: str = Field(
        "default",
        description="'default' (the shipped character n-gram model: arq, ary, eng, hau, ibo, pcm, yor) or a "
        "path to a model saved by a previous run (data/langid.json).",
    )
    train_from: str | None = Field(
        None,
        description="A group column holding each row's language: train a character n-gram identifier on the "
        "training split with it (saved as data/langid.json) instead of using `identifier`.",
    )


class ReplayConfig(Section):
    """General-domain data mixed into training against catastrophic forgetting (replay)."""

    path: str = Field(..., description="File of general data (text or instruction rows), relative to the config.")
    format: Literal["text", "instruction"] = Field("text", description="Record kind of the replay rows.")
    columns: dict[str, str] = Field(default_factory=dict, description="Column mapping of the replay file.")
    ratio: float = Field(
        0.1, gt=0, le=1, description="Replay rows added to train, as a fraction of the train rows (seeded sample)."
    )


class DataConfig(Section):
    """Stage 1: where the data is and how to prepare it."""

    train: str = Field(
        ...,
        description="Training data: a jsonl/json/csv/tsv/txt/parquet/arrow file (gzip/bz2/xz too), a folder "
        "of them, or a datasets.save_to_disk folder; relative to the config.",
    )
    validation: str | None = Field(None, description="Optional validation file; otherwise split from train.")
    test: str | None = Field(None, description="Optional test file; otherwise split from train.")
    format: Format = Field(
        "classification",
        description="Record kind of the rows, or 'auto' to detect it from the column names.",
    )
    convert: Literal["none", "pairs", "instructions"] = Field(
        "none",
        description="'pairs': ranking, rating and choice records become (prompt, chosen, rejected) preference "
        "pairs; 'instructions': parallel text becomes translation instructions in both directions.",
    )
    pair_margin: float = Field(
        1.0, gt=0, description="With convert: pairs, two rated responses pair when their scores differ by this."
    )
    text_mode: Literal["line", "paragraph"] = Field(
        "line", description="Plain-text files: one document per line, or per blank-line-separated paragraph."
    )
    dataset_split: str | None = Field(
        None, description="Which split of a datasets.save_to_disk DatasetDict folder to read."
    )
    stream: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Prepare in one streaming pass with bounded memory (exact dedup, hash-assigned splits, "
        "language summary from a sample; no near-duplicate detection or stratification). 'auto': when the "
        "input files exceed 256 MB.",
    )
    strict: bool = Field(
        False, description="Fail when any row is rejected (after writing rejects.jsonl), instead of going on."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Map from tunesmith field (text, label, instruction, input, output, prompt, ...) to your "
        "column name.",
    )
    labels: list[str] | None = Field(None, description="The label set; inferred from train when omitted.")
    groups: list[str] = Field(
        default_factory=list, description="Group columns (language, dialect, ...) carried to evaluation."
    )
    max_rows: dict[str, int] = Field(
        default_factory=dict,
        description="Cap rows per split after cleaning and splitting (e.g. {train: 2000, validation: 500}); a "
        "seeded sample. Splits are made from all the rows first, so a held-out fraction is of the whole file, "
        "not of the capped train split: cap validation too if it should stay small.",
    )
    replay: ReplayConfig | None = Field(None, description="Optional general data mixed into train (replay).")
    task: TaskConfig = Field(default_factory=TaskConfig, description="How rows become training text.")
    clean: CleanConfig = Field(default_factory=CleanConfig, description="Cleaning steps.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Splitting and leak removal.")
    language: LanguageConfig = Field(
        default_factory=LanguageConfig, description="Language, script and code-mixing annotations."
    )
