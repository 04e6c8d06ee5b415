"""The request log: schema migrations, the background writer (privacy modes, overflow, retries), feedback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tunesmith.monitor.redact import redact
from tunesmith.monitor.store import VERSION_TABLE, Store, store_url
from tunesmith.monitor.writer import StoreWriter, WriterSettings, to_row, user_text
from tunesmith.serve.app import create_app

ENTRY = {
    "request_id": "r1",
    "time": 1.0,
    "endpoint": "chat",
    "model": "tiny",
    "prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "mail me at ada@example.com"}],
    "response": ["call +234 803 123 4567 tomorrow"],
    "prompt_tokens": 10,
    "completion_tokens": 7,
    "latency_s": 0.5,
    "finish_reason": "stop",
    "stream": False,
}


def tiny_engine(model_dir: Path):
    from serve_helpers import load_plain
    from tunesmith.serve.adapters import AdapterPool
    from tunesmith.serve.batching import BatchingEngine

    model, tokenizer = load_plain(model_dir)
    return BatchingEngine(AdapterPool(model, "tiny"), tokenizer, [tokenizer.eos_token_id])


def annotate(text: str) -> dict:
    return {"language": "pcm" if "dey" in text else "eng", "script": "Latin", "cmi": 0.0}


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_migrations_create_the_schema_the_code_uses_and_reopen_idempotently(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tunesmith.monitor.schema import metadata

    store = Store(tmp_path / "m.db")
    assert store.revision == "0001" and store.url == store_url(tmp_path / "m.db")
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(context, metadata)
    assert diff == []
    store.add([to_row(ENTRY, "full", annotate)])
    again = Store(tmp_path / "m.db")
    assert again.counts()["requests"] == 1 and again.requests()[0]["prompt"] == ENTRY["prompt"]


def test_privacy_modes_and_annotation() -> None:
    full = to_row(ENTRY, "full", annotate)
    assert "ada@example.com" in full["prompt"] and full["redactions"] == 0 and full["choices"] == 1
    assert full["language"] == "eng" and full["prompt_tokens"] == 10
    hidden = to_row(ENTRY, "redact", annotate)
    assert "[EMAIL]" in hidden["prompt"] and "[PHONE]" in hidden["response"] and hidden["redactions"] == 2
    assert "be brief" in hidden["prompt"]
    hashed = to_row(ENTRY, "hashes", annotate)
    assert hashed["prompt"] is None and hashed["response"] is None
    assert hashed["prompt_sha256"] == full["prompt_sha256"] and len(hashed["prompt_sha256"]) == 64
    assert user_text(ENTRY["prompt"]) == "mail me at ada@example.com" and user_text("plain") == "plain"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("born in 1998, paid 25000 naira", "born in 1998, paid 25000 naira"),
        ("ring 0803-123-4567 abeg", "ring [PHONE] abeg"),
        ("server 10.0.0.12 down", "server [IP] down"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
    ],
)
def test_redaction_takes_pii_and_leaves_numbers(text: str, kept: str) -> None:
    assert redact(text)[0] == kept


class FlakyStore:
    """A store that fails its first ``failures`` writes (the database briefly down), then keeps rows."""

    def __init__(self, failures: int = 0, gate: threading.Event | None = None) -> None:
        self.failures, self.gate, self.rows, self.calls = failures, gate, [], 0

    def add(self, request_rows, feedback_rows=()) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        if self.calls <= self.failures:
            raise ConnectionError("database unavailable")
        self.rows += list(request_rows) + list(feedback_rows)


def test_a_briefly_unavailable_database_loses_nothing() -> None:
    store = FlakyStore(failures=2)
    writer = StoreWriter(store, WriterSettings(privacy="full"), annotate)
    for i in range(5):
        writer.record({**ENTRY, "request_id": f"r{i}"})
    wait_for(lambda: len(store.rows) == 5)
    writer.close()
    assert sorted(r["request_id"] for r in store.rows) == [f"r{i}" for i in range(5)]
    assert writer.counters["write_errors"] == 2 and writer.counters["dropped"] == 0


def test_overflow_is_counted_never_blocks() -> None:
    gate = threading.Event()
    store = FlakyStore(gate=gate)
    writer = StoreWriter(store, WriterSettings(privacy="full", capacity=2, batch=1), annotate)
    writer.record({**ENTRY, "request_id": "first"})
    wait_for(lambda: writer.queue.qsize() == 0 and store.calls == 1)  # the thread holds it, blocked in the store
    started = time.perf_counter()
    for i in range(5):
        writer.record({**ENTRY, "request_id": f"r{i}"})
    assert time.perf_counter() - started < 0.5
    assert writer.counters["dropped"] == 3 and writer.stats()["queue"] == 2
    gate.set()
    wait_for(lambda: len(store.rows) == 3)
    writer.close()
    assert writer.counters["written"] == 3


def test_feedback_links_to_logged_requests(tiny_model_dir: Path, tmp_path: Path) -> None:
    engine = tiny_engine(tiny_model_dir)
    store = Store(tmp_path / "monitor.db")
    writer = StoreWriter(store, WriterSettings(privacy="redact"), annotate)
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "how market dey"}], "max_tokens": 4, "n": 3}
    with TestClient(create_app(engine, log=writer)) as c:
        answered = c.post("/v1/chat/completions", json=chat)
        rid, response_id = answered.headers["x-request-id"], answered.json()["id"]
        post = lambda body: c.post("/v1/feedback", json=body)  # noqa: E731
        assert post({"request_id": response_id, "kind": "choice", "value": 2}).status_code == 200
        assert post({"request_id": rid, "kind": "ranking", "value": [1, 0, 2]}).status_code == 200
        assert post({"request_id": rid, "kind": "thumbs", "value": "down", "comment": "wrong"}).status_code == 200
        assert post({"request_id": rid, "kind": "rating", "value": 4}).status_code == 200
        assert post({"request_id": rid, "kind": "correction", "value": "E dey go well"}).status_code == 200
        bad = [
            ({"request_id": rid, "kind": "choice", "value": 3}, 400, "had 3 answers"),
            ({"request_id": rid, "kind": "ranking", "value": [0, 0, 1]}, 400, "each of the request's 3"),
            ({"request_id": rid, "kind": "rating", "value": 9}, 400, "outside the scale"),
            ({"request_id": rid, "kind": "thumbs", "value": "maybe"}, 400, "up"),
            ({"request_id": "nope", "kind": "thumbs", "value": "up"}, 404, "no logged request"),
            ({"request_id": rid, "kind": "vibes", "value": 1}, 400, "kind"),
        ]
        for body, status, words in bad:
            response = post(body)
            assert response.status_code == status and words in response.json()["error"]["message"], body
        metrics = c.get("/metrics").text
    assert "tunesmith_request_log_dropped_total 0" in metrics
    logged = store.requests()
    assert [r["request_id"] for r in logged] == [rid] and logged[0]["choices"] == 3
    assert logged[0]["language"] == "pcm" and logged[0]["prompt"][0]["content"] == "how market dey"
    kinds = [(f["kind"], f["value"]) for f in store.feedback()]
    assert kinds == [
        ("choice", 2),
        ("ranking", [1, 0, 2]),
        ("thumbs", "down"),
        ("rating", {"value": 4.0, "scale": [1.0, 5.0]}),
        ("correction", "E dey go well"),
    ]
    # a request older than the writer remembers is found in the store
    writer.recent.clear()
    fresh = StoreWriter(store, WriterSettings(), annotate)
    with TestClient(create_app(engine, log=fresh)) as c:
        assert c.post("/v1/feedback", json={"request_id": rid, "kind": "thumbs", "value": "up"}).status_code == 200


def test_feedback_without_a_store_says_how_to_get_one(tiny_model_dir: Path) -> None:
    engine = tiny_engine(tiny_model_dir)
    with TestClient(create_app(engine)) as c:
        response = c.post("/v1/feedback", json={"request_id": "x", "kind": "thumbs", "value": "up"})
        assert response.status_code == 503 and "--store" in response.json()["error"]["message"]


def test_metrics_show_the_log_and_the_latest_drift_check(tiny_model_dir: Path, tmp_path: Path) -> None:
    engine = tiny_engine(tiny_model_dir)
    store = Store(tmp_path / "monitor.db")
    writer = StoreWriter(store, WriterSettings(), annotate)
    with TestClient(create_app(engine, log=writer)) as c:
        assert "drift_drifted" not in c.get("/metrics").text  # no check yet: no verdict shown
        store.add_drift({"rows": {"window": 50}, "drifted": True, "alerts": ["a", "b"]}, (0.0, 1.0))
        text = c.get("/metrics").text
    assert "tunesmith_request_log_drift_drifted 1" in text and "tunesmith_request_log_drift_alerts 2" in text
    assert "tunesmith_request_log_dropped_total 0" in text and "tunesmith_request_log_queue_depth 0" in text


def test_side_by_side_comparison_links_two_logged_requests(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The playground asks two models the same prompt; "A is better" names A's request and B's id as the value.
    It becomes a preference pair (A over B) and a win and a loss per model in the report."""
    from tunesmith.monitor.feedback_data import feedback_records
    from tunesmith.monitor.summary import feedback_by_model

    engine = tiny_engine(tiny_model_dir)
    store = Store(tmp_path / "monitor.db")
    writer = StoreWriter(store, WriterSettings(privacy="full"), annotate)
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "how market dey"}], "max_tokens": 4}
    with TestClient(create_app(engine, log=writer)) as c:
        first = c.post("/v1/chat/completions", json=chat).json()["id"]
        second = c.post("/v1/chat/completions", json={**chat, "temperature": 1.0, "seed": 3}).json()["id"]
        other = c.post("/v1/chat/completions", json={**chat, "messages": [{"role": "user", "content": "x"}]})
        post = lambda body: c.post("/v1/feedback", json=body)  # noqa: E731
        assert post({"request_id": first, "kind": "comparison", "value": second}).status_code == 200
        assert post({"request_id": second, "kind": "comparison", "value": other.json()["id"]}).status_code == 200
        for value, status, words in [
            ("chatcmpl-nope", 404, "no logged request with id 'chatcmpl-nope'"),
            (first, 400, "same request twice"),
            (3, 400, "id of the request"),
        ]:
            response = post({"request_id": first, "kind": "comparison", "value": value})
            assert response.status_code == status and words in response.json()["error"]["message"], value
    writer.close()
    requests = {r["request_id"]: r for r in store.requests()}
    feedback = store.feedback()
    assert [f["value"] for f in feedback] == [second.removeprefix("chatcmpl-"), other.json()["id"][9:]]
    records, rejects = feedback_records(feedback, requests)
    answers = {rid: r["response"][0] for rid, r in requests.items()}
    if answers[first[9:]] == answers[second[9:]]:
        assert rejects[0]["reason"] == "both answers are the same text"
    else:
        pair = records["preference"][0]
        assert (pair["chosen"], pair["rejected"]) == (answers[first[9:]], answers[second[9:]])
        assert pair["prompt"] == "how market dey" and pair["rejected_model"] == "tiny"
    assert rejects[-1]["reason"] == "the compared requests had different prompts"
    stats = feedback_by_model(list(requests.values()), feedback)["tiny"]
    assert (stats["wins"], stats["losses"], stats["feedback"]) == (2, 2, 2)


def test_comparison_records_from_two_models() -> None:
    from tunesmith.monitor.feedback_data import records_from
    from tunesmith.monitor.summary import feedback_by_model

    prompt = [{"role": "user", "content": "Sentiment: I no like am"}]
    a = {"request_id": "a", "model": "base", "prompt": prompt, "response": ["It is positive."]}
    b = {"request_id": "b", "model": "tuned", "prompt": prompt, "response": ["negative"]}
    hashed = {**a, "request_id": "h", "prompt": None, "response": None}
    made, reason = records_from({"kind": "comparison", "value": "a"}, b, {"a": a, "b": b})
    assert reason is None and made["preference"] == [
        {
            "request_id": "b",
            "model": "tuned",
            "prompt": "Sentiment: I no like am",
            "chosen": "negative",
            "rejected": "It is positive.",
            "rejected_model": "base",
        }
    ]
    assert records_from({"kind": "comparison", "value": "gone"}, b, {"b": b})[1] == (
        "the request it was compared with is not in the log"
    )
    assert "only hashes" in str(records_from({"kind": "comparison", "value": "h"}, b, {"h": hashed})[1])
    by_model = feedback_by_model([a, {**b, "time": 0}], [{"request_id": "b", "kind": "comparison", "value": "a"}])
    assert (by_model["tuned"]["wins"], by_model["base"]["losses"], by_model["base"].get("wins", 0)) == (1, 1, 0)


def test_the_store_shares_a_database_with_an_optuna_study(tmp_path: Path) -> None:
    """Found when the HPO and monitor tests shared one PostgreSQL database: both used Alembic's default
    version table, so the store read Optuna's schema revision and refused to open."""
    optuna = pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="s", storage=url)
    store = Store(url)
    store.add([{**to_row(ENTRY, "full", annotate), "request_id": "a"}])
    assert store.counts()["requests"] == 1
    optuna.load_study(study_name="s", storage=url)  # and Optuna still opens its study
    assert Store(url).revision == store.revision


def test_a_store_made_before_its_own_version_table_is_adopted(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    Store(path).add([{**to_row(ENTRY, "full", annotate), "request_id": "a"}])
    db = sqlite3.connect(path)  # rewrite it as stores were written before: Alembic's default table name
    db.execute("ALTER TABLE tunesmith_monitor_version RENAME TO alembic_version")
    db.commit()
    db.close()
    store = Store(path)
    assert store.revision == "0001" and store.counts()["requests"] == 1
    tables = {r[0] for r in sqlite3.connect(path).execute("select name from sqlite_master where type='table'")}
    assert "alembic_version" not in tables and "tunesmith_monitor_version" in tables
