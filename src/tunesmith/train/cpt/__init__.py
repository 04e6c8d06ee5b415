"""Continued (self-supervised) pre-training on raw domain text."""
