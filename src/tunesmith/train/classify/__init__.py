"""Sequence classification: transfer learning with a new task head on an encoder or a causal LM."""
