"""Label-prior calibration of log-likelihood scores (pure functions).

A language model's label scores mix two things: evidence from the input and a prior over the label words
themselves (a small model may simply prefer "negative"). Batch calibration (Zhou et al. 2023,
"Batch Calibration: Rethinking Calibration for In-Context Learning and Prompt Engineering",
arXiv:2309.17249) estimates that prior as the mean label distribution over the evaluated inputs and
divides it out. It uses no gold labels, so it is applied identically to every model compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def normalise(scores: dict[str, float]) -> dict[str, float]:
    """Log-probabilities renormalised over the candidate labels only (log-softmax of the scores)."""
    top = max(scores.values())
    log_z = top + math.log(sum(math.exp(s - top) for s in scores.values()))
    return {label: s - log_z for label, s in scores.items()}


def label_prior(scores: Sequence[dict[str, float]]) -> dict[str, float]:
    """Log of the mean (over rows) probability of each label, after renormalising each row."""
    rows = [normalise(s) for s in scores]
    labels = list(rows[0])
    return {lab: math.log(sum(math.exp(r[lab]) for r in rows) / len(rows)) for lab in labels}


def batch_calibrate(scores: Sequence[dict[str, float]]) -> list[dict[str, float]]:
    """Scores with the batch label prior divided out: ``log p(y|x) - log mean_x' p(y|x')``."""
    if not scores:
        return []
    prior = label_prior(scores)
    return [{lab: s - prior[lab] for lab, s in normalise(row).items()} for row in scores]
