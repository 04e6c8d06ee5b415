"""Sentence embeddings for semantic drift: mean-pooled, L2-normalised vectors from a BERT-style encoder.

Counts of languages and lengths miss a change of *topic* (election tweets in a model trained on football
banter); comparing sentence embeddings of the window with those of the training data catches it. The default
encoder is the embedded all-MiniLM-L6-v2, installed from PyPI with no network, whose published pooling is the
attention-masked mean of the last hidden states followed by L2 normalisation (its ``1_Pooling`` config); we
reproduce that pooling so that no sentence-transformers install is needed. MiniLM was trained mostly on
English: on Hausa or Yorùbá its vectors still separate languages and scripts well, topics less so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_ENCODER", "default_encoder_dir", "embed_texts"]

DEFAULT_ENCODER = "all-minilm-l6-v2"


def default_encoder_dir() -> Path | str:
    """The embedded MiniLM's directory; raises :class:`tunesmith.errors.ModelError` when it is not installed."""
    from tunesmith.models.load import local_directory, resolve

    return local_directory(resolve(DEFAULT_ENCODER))


def embed_texts(
    texts: Sequence[str], model_dir: str | Path | None = None, batch: int = 32, max_length: int = 128
) -> np.ndarray:
    """Embed each text as the mean of its token vectors, L2-normalised, on CPU.

    The model is loaded once per call, so embed both samples of a comparison in one call. Texts are sorted by
    length before batching (less padding in each batch) and the rows are put
    back in input order. Tokens past ``max_length`` are cut: drift is judged on how a prompt starts.

    Args:
        texts: The texts to embed; an empty sequence gives a ``(0, H)`` array.
        model_dir: A directory with a BERT-style encoder and its tokenizer; the embedded MiniLM when None.
        batch: Texts per forward pass.
        max_length: Tokens per text, special tokens included.

    Returns:
        ``(N, H)`` float32 array of unit-length rows (``H`` = the encoder's hidden size, 384 for MiniLM); a text
        that tokenizes to nothing (an empty one, with a tokenizer that adds no ``[CLS]``) gives a zero row.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    directory = model_dir if model_dir is not None else default_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory).eval()
    out = np.zeros((len(texts), int(model.config.hidden_size)), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            encoded = tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            hidden = model(**encoded).last_hidden_state  # (B, T, H)
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).float().numpy()
    return out
