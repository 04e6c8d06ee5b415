"""Reward modelling: a scalar head trained on pairwise, ranked or rated feedback."""
