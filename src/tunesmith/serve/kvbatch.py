"""The key/value cache of a running batch whose rows join and leave at different times.

Rows are left-padded to a common length: every row's newest token sits in the last column, so one
forward of shape (rows, 1) decodes all of them, the attention mask hides each row's padding and position
ids count only its real tokens. A row that joins is prefilled on its own (or with others that join at
the same step) and its cache is padded on the left to the batch's length; a row that leaves is dropped
with an index select, and columns that have become padding for every remaining row are cut off, so the
cache never grows beyond the longest live row.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def cache_layers(cache: Any) -> list[Any]:
    """The per-layer holders of ``keys`` and ``values`` (batch, heads, positions, head_dim)."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise TypeError(f"unsupported cache type {type(cache).__name__}: the batching engine needs a DynamicCache")
    return list(layers)


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only real tokens (left padding gets position 0)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


class KVBatch:
    """One DynamicCache shared by the rows of a batch, with its (rows, positions) attention mask."""

    def __init__(self) -> None:
        self.cache: Any = None
        self.mask: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    @property
    def length(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[1])

    def add(self, cache: Any, mask: torch.Tensor) -> None:
        """Append rows prefilled together (their ``cache`` and left-padded ``mask``) below the current ones."""
        if self.mask is None:
            self.cache, self.mask = cache, mask
            return
        length = max(self.length, int(mask.shape[1]))
        for mine, theirs in zip(cache_layers(self.cache), cache_layers(cache), strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, length), _left_pad(theirs.keys, length)])
            mine.values = torch.cat([_left_pad(mine.values, length), _left_pad(theirs.values, length)])
        self.mask = torch.cat([_left_pad_mask(self.mask, length), _left_pad_mask(mask, length)])

    def grow(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mask and position ids for one more token in every row (the forward appends its keys)."""
        assert self.mask is not None
        positions = self.mask.sum(-1, keepdim=True)
        self.mask = F.pad(self.mask, (0, 1), value=1)
        return self.mask, positions

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (indices, in order) and cut columns that are padding for all of them."""
        if not rows:
            self.cache, self.mask = None, None
            return
        assert self.mask is not None
        index = torch.tensor(rows, device=self.mask.device)
        mask = self.mask.index_select(0, index)
        start = int((mask.sum(0) > 0).long().argmax()) if bool(mask.any()) else 0
        for layer in cache_layers(self.cache):
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]
        self.mask = mask[:, start:]


def _left_pad(tensor: torch.Tensor, length: int) -> torch.Tensor:
    return F.pad(tensor, (0, 0, length - tensor.shape[2], 0))


def _left_pad_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    return F.pad(mask, (length - mask.shape[1], 0), value=0)
