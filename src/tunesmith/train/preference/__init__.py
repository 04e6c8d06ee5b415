"""Preference optimisation from human feedback: DPO (and IPO, SimPO, hinge), ORPO and KTO."""
