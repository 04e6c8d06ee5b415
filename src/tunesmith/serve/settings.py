"""Server limits and security settings (``tunesmith serve`` options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServerSettings:
    """What the HTTP layer enforces.

    Attributes:
        api_key_hashes: SHA-256 hex digests of the accepted API keys; empty = no auth (loopback only).
        max_body_bytes: largest request body accepted (413 beyond).
        max_tokens_limit: largest ``max_tokens`` a request may ask for (400 beyond).
        default_max_tokens: chat answers' length when the request gives none.
        request_timeout_s: a request still generating after this long ends with 504 (or an error event).
        adapter_roots: folders under which ``/v1/load_lora_adapter`` may load adapters (none: disabled).
    """

    api_key_hashes: tuple[str, ...] = ()
    max_body_bytes: int = 1 << 20
    max_tokens_limit: int = 2048
    default_max_tokens: int = 512
    request_timeout_s: float = 300.0
    adapter_roots: tuple[Path, ...] = field(default_factory=tuple)
