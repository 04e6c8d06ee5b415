"""``train.preference``: the settings of the dpo, orpo and kto objectives."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.section import Section

# Methods whose adapter PEFT (or tunesmith) can switch off, leaving the exact base model.
ADAPTER_OFF_METHODS = ("lora", "dora", "ia3", "qlora")


class PreferenceConfig(Section):
    """How the dpo, orpo and kto objectives weigh preferences (``train.preference``)."""

    loss_type: Literal["sigmoid", "ipo", "hinge", "simpo"] = Field(
        "sigmoid",
        description="dpo only: 'sigmoid' is DPO; 'ipo' squares the per-token log-ratio gap toward 1/(2 beta); "
        "'hinge' is SLiC; 'simpo' is reference-free SimPO on per-token mean log-probs with margin gamma.",
    )
    beta: float | None = Field(
        None,
        gt=0,
        description="Strength of the preference term (DPO's KL weight): default 0.1, or 2.0 for simpo "
        "(the SimPO paper's range is 2-2.5). For orpo it weighs the odds-ratio term against the NLL.",
    )
    gamma: float = Field(0.5, ge=0, description="simpo: the target reward margin between chosen and rejected.")
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="sigmoid/simpo: the assumed rate of flipped preference labels (cDPO)."
    )
    reference: Literal["auto", "adapter_off", "precompute"] = Field(
        "auto",
        description="Where the reference log-probs come from, never a second model copy: 'adapter_off' runs "
        "the same model with the adapter disabled (lora, dora, ia3, qlora); 'precompute' scores every "
        "example with the base model once before training (any method; full and freeze need it); 'auto' "
        "picks adapter_off where it works.",
    )
    sft_weight: float = Field(
        0.0,
        ge=0,
        description="dpo: add this times the chosen answer's per-token NLL (RPO, arXiv:2404.19733), which "
        "keeps DPO from lowering the likelihood of good answers along with bad ones.",
    )
    desirable_weight: float = Field(1.0, gt=0, description="kto: weight of the desirable (good) examples' loss.")
    undesirable_weight: float = Field(1.0, gt=0, description="kto: weight of the undesirable (bad) examples' loss.")

    def strength(self, objective: str) -> float:
        """``beta`` with its default for ``objective`` and loss type."""
        if self.beta is not None:
            return self.beta
        return 2.0 if objective == "dpo" and self.loss_type == "simpo" else 0.1

    def uses_reference(self, objective: str) -> bool:
        """ORPO and SimPO need no reference model; DPO (sigmoid, ipo, hinge) and KTO do."""
        return objective == "kto" or (objective == "dpo" and self.loss_type != "simpo")

    def reference_source(self, objective: str, method: str) -> str:
        """``none``, ``adapter_off`` or ``precompute``: where this run's reference log-probs come from.

        Raises:
            ValueError: ``adapter_off`` was asked for with a method that has no adapter to switch off.
        """
        if not self.uses_reference(objective):
            return "none"
        if self.reference == "auto":
            return "adapter_off" if method in ADAPTER_OFF_METHODS else "precompute"
        if self.reference == "adapter_off" and method not in ADAPTER_OFF_METHODS:
            raise ValueError(
                "train.preference.reference adapter_off needs an adapter to switch off "
                f"({', '.join(ADAPTER_OFF_METHODS)}); method {method} changes the model itself: "
                "use reference: precompute"
            )
        return self.reference
