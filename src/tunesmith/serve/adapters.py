"""Several LoRA adapters over one base model in memory, chosen per batch row.

PEFT's mixed-batch forward (``adapter_names``) runs each row through its own adapter (or none, for
``__base__``) in one forward, so requests for different adapters decode together: the base weights are
read once per step whatever the mix. Only LoRA supports that; DoRA, IA3 and prompt-learning adapters are
refused here with the way to serve them (merge with ``tunesmith export --to hf`` and serve the folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tunesmith.errors import ServeError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BASE_ROW = "__base__"


def check_name(name: str) -> str:
    """A model name usable in URLs and the ``model`` field: letters, digits, ``._-``; no path parts."""
    if not NAME.match(name):
        raise ServeError(
            f"adapter name '{name}': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    return name


def check_new_name(name: str, loaded: list[str]) -> str:
    """``name`` is usable (:func:`check_name`) and not the name of a loaded model."""
    check_name(name)
    if name in loaded:
        raise ServeError(f"a model named '{name}' is already loaded; unload it first or choose another name.")
    return name


def check_loaded(name: str, adapters: dict[str, Any]) -> None:
    if name not in adapters:
        raise ServeError(f"no adapter named '{name}' is loaded (loaded: {', '.join(adapters) or 'none'}).")


def adapter_folder(path: Path) -> Path:
    """The adapter folder of ``path``: itself, or ``adapter/`` of a run directory, checked to be LoRA."""
    folder = path / "adapter" if (path / "config.yaml").is_file() and (path / "adapter").is_dir() else path
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise ServeError(f"{path}: no adapter_config.json (give a LoRA adapter folder or a LoRA run directory).")
    settings = json.loads(config_file.read_text(encoding="utf-8"))
    kind = settings.get("peft_type")
    if kind != "LORA" or settings.get("use_dora"):
        what = "DoRA" if settings.get("use_dora") else str(kind)
        raise ServeError(
            f"{folder}: a {what} adapter cannot share a batch with others; merge it (`tunesmith export RUN_DIR "
            "--to hf`) and serve the merged folder, or retrain with method lora."
        )
    return folder


class AdapterPool:
    """The base model plus named LoRA adapters; :meth:`forward_kwargs` routes each batch row."""

    def __init__(self, model: Any, base_name: str) -> None:
        self.model = model
        self.base_name = base_name
        self.adapters: dict[str, str] = {}
        self.dtype = next(model.parameters()).dtype

    def names(self) -> list[str]:
        return [self.base_name, *self.adapters]

    def has(self, name: str) -> bool:
        return name == self.base_name or name in self.adapters

    def load(self, name: str, path: Path) -> dict[str, Any]:
        """Load the LoRA adapter at ``path`` under ``name``; errors name what does not fit."""
        from peft import PeftModel

        check_new_name(name, self.names())
        folder = adapter_folder(path)
        try:
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(folder), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ServeError(f"{folder}: the adapter does not fit the base model '{self.base_name}': {exc}") from None
        self.model.to(self.dtype).eval()
        self.adapters[name] = str(folder)
        return {"name": name, "path": str(folder)}

    def unload(self, name: str) -> None:
        check_loaded(name, self.adapters)
        del self.adapters[name]
        if self.adapters:
            self.model.delete_adapter(name)
        else:
            self.model = self.model.unload()  # the plain base again: no LoRA layers left in the forward

    def forward_kwargs(self, names: list[str]) -> dict[str, Any]:
        """``adapter_names`` for a batch whose rows ask for ``names`` (nothing when no adapter is loaded)."""
        if not self.adapters:
            return {}
        return {"adapter_names": [BASE_ROW if n == self.base_name else n for n in names]}
