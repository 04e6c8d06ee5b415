"""``train.reward``: the settings of the reward objective."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.section import Section


class RewardConfig(Section):
    """How the reward model learns from feedback (``train.reward``)."""

    ranking_loss: Literal["pairwise", "listwise"] = Field(
        "pairwise",
        description="For ranking data without data.convert: 'pairwise' trains on every implied pair; 'listwise' "
        "on each whole ranking by the Plackett-Luce likelihood (ties allowed). Pairwise data is always pairwise.",
    )
    margin: bool = Field(
        False,
        description="Ask for a reward gap of at least the pair's `margin` (the score gap of pairs converted "
        "from ratings, or a margin column), scaled by margin_scale.",
    )
    margin_scale: float = Field(1.0, gt=0, description="Multiplier of each pair's margin when margin is on.")
    center: float = Field(
        0.0, ge=0, description="Weight of a penalty on (r_chosen + r_rejected)^2 that keeps rewards centred on 0."
    )
