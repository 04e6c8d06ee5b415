"""The monitor store on a real PostgreSQL server, the same way as on SQLite."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tunesmith.monitor.feedback_data import write_feedback_data
from tunesmith.monitor.store import Store
from tunesmith.monitor.writer import StoreWriter, WriterSettings

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store(tmp_path / "monitor.db")
    return Store(request.getfixturevalue("postgres_url"))


def test_log_feedback_and_drift_round_trip(store: Store, tmp_path: Path) -> None:
    writer = StoreWriter(
        store, WriterSettings(privacy="redact"), lambda text: {"language": "pcm", "script": "Latin", "cmi": 12.5}
    )
    for i in range(30):
        writer.record(
            {
                "request_id": f"r{i}",
                "time": 1000.0 + i,
                "endpoint": "chat",
                "model": "m",
                "prompt": [{"role": "user", "content": f"Ẹ kú àárọ̀ {i}, mail ada@example.com"}],
                "response": ["answer a", "answer b"],
                "prompt_tokens": 9,
                "completion_tokens": 4,
                "latency_s": 0.25,
                "finish_reason": "stop",
                "stream": i % 2 == 0,
            }
        )
        writer.record_feedback(
            {"request_id": f"r{i}", "time": 2000.0 + i, "kind": "choice", "value": "1", "comment": None}
        )
    writer.close()
    assert writer.counters == {**writer.counters, "written": 30, "feedback_written": 30, "dropped": 0}
    rows = store.requests(since=1010, until=1020)
    assert [r["request_id"] for r in rows] == [f"r{i}" for i in range(10, 20)]
    assert rows[0]["prompt"][0]["content"] == "Ẹ kú àárọ̀ 10, mail [EMAIL]" and rows[0]["cmi"] == 12.5
    assert [r["request_id"] for r in store.requests(limit=3)] == ["r27", "r28", "r29"]
    assert store.request_choices(["r3", "nope"]) == {"r3": 2}
    store.add_drift({"rows": {"window": 30}, "drifted": True, "alerts": ["language mix moved"]}, (1000.0, 1030.0))
    assert store.drift_checks()[-1]["alerts"] == ["language mix moved"]
    manifest = write_feedback_data(store, tmp_path / "out")
    assert manifest["records"]["preference"]["rows"] == 30 and manifest["rejected"] == 0
    pairs = [json.loads(x) for x in (tmp_path / "out" / "preference.jsonl").read_text().splitlines()]
    assert pairs[0] == {**pairs[0], "chosen": "answer b", "rejected": "answer a"}
    assert store.counts() == {"requests": 30, "feedback": 30, "drift_checks": 1}
    assert Store(store.url).revision == "0001"  # reopening migrates nothing twice


def test_an_unreachable_database_is_a_clear_error() -> None:
    from tunesmith.errors import ConfigError

    started = time.monotonic()
    with pytest.raises(ConfigError, match="monitor store .*127.0.0.1:1/x: cannot open it"):
        Store("postgresql+psycopg://someone:secret@127.0.0.1:1/x")
    assert time.monotonic() - started < 30
