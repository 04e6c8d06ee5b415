"""The ``monitor`` config section's drift thresholds (read by :mod:`tunesmith.monitor.drift`)."""

from __future__ import annotations

from pydantic import Field

from tunesmith.config.section import Section


class DriftThresholds(Section):
    """When a statistic counts as drift; the defaults follow each statistic's conventional reading."""

    min_rows: int = Field(20, ge=2, description="Refuse a window or reference with fewer texts than this.")
    language_js: float = Field(0.10, ge=0, le=1, description="Alert when the language mix's JS divergence exceeds.")
    script_js: float = Field(0.10, ge=0, le=1, description="Alert when the script mix's JS divergence exceeds.")
    length_psi: float = Field(
        0.25, ge=0, description="Alert when the PSI of characters or of words per text exceeds (0.25: major)."
    )
    fertility_change: float = Field(
        0.20, ge=0, description="Alert when tokens per word change by more than this fraction, up or down."
    )
    unknown_rate_change: float = Field(
        0.02, ge=0, description="Alert when the byte-fallback + unknown token share moves by more than this."
    )
    semantic_auc: float = Field(
        0.75, ge=0.5, le=1, description="Domain-classifier AUC at or above which the embeddings count as moved."
    )
    p_value: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Significance an alert also needs (chi-square for language and script, KS for length, MMD "
        "for semantic): on a small window a large effect size is often noise. Fertility has no test.",
    )
