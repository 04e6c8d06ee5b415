from __future__ import annotations

import subprocess
import sys


def test_import_is_light() -> None:
    code = (
        "import sys, tunesmith; tunesmith.__version__; "
        "names = ('torch', 'transformers', 'peft', 'fastapi', 'bitsandbytes', 'gguf'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_public_api_resolves() -> None:
    import tunesmith

    assert callable(tunesmith.load_config) and callable(tunesmith.run)
    try:
        tunesmith.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
