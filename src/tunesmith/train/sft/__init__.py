"""Supervised fine-tuning / instruction tuning on prompt-completion examples."""
