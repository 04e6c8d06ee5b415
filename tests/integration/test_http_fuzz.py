"""Every HTTP endpoint under generated input (schemathesis, from the app's own OpenAPI schema).

For each operation, hypothesis generates requests from the schema (valid and not); each answer must be a
documented status with a body that matches the schema, never a 5xx, and every error must be OpenAI's error
shape with a message saying what was wrong. The serving app runs a real (tiny) model, and half the
generated requests name it, so generation, streaming, limits and stops are exercised, not only the 404 of
an unknown model. The dashboard's JSON API is fuzzed the same way (on an empty folder: nothing can start).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")
EXAMPLES = 40  # generated requests per operation
# The same examples every run (CI must not flake); TUNESMITH_FUZZ_EXPLORE=1 draws new ones, five times as many.
EXPLORE = os.environ.get("TUNESMITH_FUZZ_EXPLORE") == "1"


def fuzz(app, rewrite=None, allowed_5xx: frozenset[int] = frozenset()) -> dict[str, Counter]:
    """Run every operation of ``app``'s schema; the status codes seen per operation. Fails on any violation,
    including a 5xx other than ``allowed_5xx`` (documented states such as "no request log configured")."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen: dict[str, Counter] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        seen[operation.label] = exercise(operation, rewrite, allowed_5xx)
    return seen


def exercise(operation, rewrite, allowed_5xx: frozenset[int]) -> Counter:
    """:data:`EXAMPLES` generated requests to one operation, each answer checked; the status codes seen."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    statuses: Counter = Counter()

    @settings(
        max_examples=EXAMPLES * (5 if EXPLORE else 1),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not EXPLORE,
    )
    @given(case=operation.as_strategy())
    def run(case) -> None:
        if rewrite is not None:
            rewrite(case, sum(statuses.values()))
        response = case.call()
        statuses[response.status_code] += 1
        assert response.status_code < 500 or response.status_code in allowed_5xx, response.text
        case.validate_response(response, checks=checks)
        assert "Traceback" not in response.text
        if response.status_code >= 400:
            error = json.loads(response.text).get("error") or {}
            assert isinstance(error.get("message"), str) and error["message"].strip(), response.text

    run()
    return statuses


def test_the_serving_api_under_generated_requests(tiny_model_dir: Path, tmp_path: Path) -> None:
    from serve_helpers import load_plain
    from tunesmith.monitor.store import Store
    from tunesmith.monitor.writer import StoreWriter, WriterSettings
    from tunesmith.serve.adapters import AdapterPool
    from tunesmith.serve.app import create_app
    from tunesmith.serve.batching import BatchingEngine
    from tunesmith.serve.settings import ServerSettings

    model, tokenizer = load_plain(tiny_model_dir)
    engine = BatchingEngine(AdapterPool(model, "tiny"), tokenizer, [tokenizer.eos_token_id])
    log = StoreWriter(Store(tmp_path / "monitor.db"), WriterSettings(), lambda text: {})
    settings = ServerSettings(max_tokens_limit=8, default_max_tokens=8, adapter_roots=(tmp_path,))
    app = create_app(engine, settings, log)

    def name_the_model(case, n: int) -> None:  # every other request reaches generation
        if isinstance(case.body, dict) and "model" in case.body and n % 2 == 0:
            case.body["model"] = "tiny"

    engine.start()
    try:
        seen = fuzz(app, name_the_model)
    finally:
        engine.shutdown()
        log.close()
    assert {"POST /v1/chat/completions", "POST /v1/completions", "POST /v1/feedback"} <= set(seen)
    assert seen["POST /v1/chat/completions"][200] > 0  # generation really ran, not only rejections
    total = sum(sum(c.values()) for c in seen.values())
    print(f"serving API: {total} generated requests over {len(seen)} operations, no 5xx: {dict(seen)}")


def test_the_dashboard_api_under_generated_requests(tmp_path: Path) -> None:
    from tunesmith.ui.app import create_ui_app

    (tmp_path / "runs").mkdir()
    app = create_ui_app(tmp_path / "runs", tmp_path, hosts=())
    seen = fuzz(app, allowed_5xx=frozenset({503}))  # feedback with no model loaded: no request log yet
    ui = {label: c for label, c in seen.items() if "/ui/api/" in label}
    assert "POST /ui/api/jobs" in ui and "GET /ui/api/runs/{name}/metrics" in ui
    assert not any(code == 201 for c in ui.values() for code in c)  # nothing could start from an empty folder
    total = sum(sum(c.values()) for c in ui.values())
    print(f"dashboard API: {total} generated requests over {len(ui)} operations, no unexpected 5xx")
