"""The dashboard in a real browser: Playwright driving Debian's Chromium (headless) against a live server.

Covers what a user does: find their runs, open one and see its curves, compare two, chat with a run in the
playground and say which answer is better, and see that feedback on the monitoring page. Each page's
screenshot is saved under ``tests/artifacts/ui/``.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_helpers import free_port
from ui_helpers import copy_run

pytestmark = pytest.mark.integration
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    pytest.skip("no Chromium on this machine (make setup installs Debian's `chromium` package)")


@pytest.fixture(scope="module")
def dashboard(tiny_lora_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    import uvicorn

    from tunesmith.cli.main import main
    from tunesmith.ui.app import create_ui_app

    work = tmp_path_factory.mktemp("ui-browser")
    root = work / "runs"
    evaluated = copy_run(tiny_lora_run, root, "tiny-lora")
    copy_run(tiny_lora_run, root, "tiny-lora-b", lr=0.001)
    assert main(["eval", str(evaluated), "--set", "eval.baselines=[zero-shot]"]) == 0
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_ui_app(root, work), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", root
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium()
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_runs_table_lists_filters_and_sorts(dashboard, page) -> None:
    url, _ = dashboard
    page.goto(url + "/")
    playwright.expect(page.locator("#runs")).to_contain_text("tiny-lora-b")
    playwright.expect(page.locator("tr[data-name=tiny-lora] .status")).to_have_text("evaluated")
    playwright.expect(page.locator("tr[data-name=tiny-lora-b] .status")).to_have_text("trained")
    page.fill("#filter", "lora-b")
    playwright.expect(page.locator("tr[data-name=tiny-lora]")).to_be_hidden()
    playwright.expect(page.locator("tr[data-name=tiny-lora-b]")).to_be_visible()
    page.select_option("#status-filter", "evaluated")
    playwright.expect(page.locator("#runs tbody tr:not(.hidden)")).to_have_count(0)
    page.fill("#filter", "")
    playwright.expect(page.locator("tr[data-name=tiny-lora]")).to_be_visible()
    page.select_option("#status-filter", "")
    page.click("th[data-key=name]")
    names = [page.locator("#runs tbody tr").nth(i).get_attribute("data-name") for i in range(2)]
    page.click("th[data-key=name]")  # descending
    assert page.locator("#runs tbody tr").last.get_attribute("data-name") == names[0]


def test_run_page_shows_curves_and_evaluation(dashboard, page) -> None:
    url, _ = dashboard
    page.goto(url + "/runs/tiny-lora")
    loss = page.locator("#chart-loss")
    playwright.expect(loss.locator("path[data-series='train loss']")).to_have_count(1)
    assert int(loss.get_attribute("data-points") or 0) > 1
    playwright.expect(page.locator("#eval-table")).to_contain_text("tuned (lora)")
    playwright.expect(page.locator("#eval-table")).to_contain_text("base zero-shot")
    playwright.expect(page.locator("#config-text")).to_contain_text("name: tiny-lora")
    assert page.locator("#report-frame").count() == 1
    page.click("a[href='/runs/tiny-lora/files/config.yaml']")
    playwright.expect(page.locator("body")).to_contain_text("tiny-lora")


def test_run_page_curves_update_while_the_run_trains(dashboard, page) -> None:
    url, root = dashboard
    run = copy_run(root / "tiny-lora-b", root, "live")
    shutil.rmtree(run / "eval", ignore_errors=True)
    (run / "train.json").unlink()
    lines = [json.dumps({"step": s, "loss": 3.0 - 0.1 * s, "lr": 0.01}) for s in range(1, 4)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    page.goto(url + "/runs/live")
    playwright.expect(page.locator("#run-status")).to_have_text("training")
    loss = page.locator("#chart-loss")
    playwright.expect(loss).to_have_attribute("data-points", "3")
    with (run / "metrics.jsonl").open("a") as fh:  # the trainer logs three more steps and a validation
        fh.writelines(json.dumps({"step": s, "loss": 3.0 - 0.1 * s}) + "\n" for s in range(4, 7))
        fh.write(json.dumps({"step": 6, "epoch": 1, "val_loss": 2.6}) + "\n")
    playwright.expect(loss).to_have_attribute("data-points", "7", timeout=15_000)
    playwright.expect(loss.locator("path[data-series='validation loss']")).to_have_count(1)


def test_compare_two_runs(dashboard, page) -> None:
    url, _ = dashboard
    page.goto(url + "/")
    playwright.expect(page.locator("#compare")).to_be_disabled()
    page.check("input.pick[value=tiny-lora]")
    page.check("input.pick[value=tiny-lora-b]")
    page.click("#compare")
    page.wait_for_url("**/compare?run=*")
    differs = page.locator("#config-diff tr.differs")
    playwright.expect(differs.filter(has_text="train.lr")).to_have_count(1)
    playwright.expect(page.locator("#compare-train path[data-series='tiny-lora-b']")).to_have_count(1)
    playwright.expect(page.locator("#compare-metrics")).to_contain_text("tuned (lora)")


def test_playground_sends_a_prompt_and_records_a_preference(dashboard, page) -> None:
    url, root = dashboard
    page.goto(url + "/playground")
    page.select_option("#serve-choice", "tiny-lora")
    page.click("#serve")
    playwright.expect(page.locator("#slot-state")).to_have_text("ready", timeout=120_000)
    playwright.expect(page.locator("#send")).to_be_enabled()
    assert page.locator("#model-b").input_value() == "tiny-lora"
    page.fill("#prompt", "how market dey")
    page.fill("#max-tokens", "6")
    page.click("#send")
    playwright.expect(page.locator("#b-better")).to_be_enabled(timeout=60_000)
    assert page.locator("#id-a").inner_text().startswith("chatcmpl-")
    page.click("#b-better")
    playwright.expect(page.locator("#feedback-note")).to_have_text("recorded: B is better")
    page.click("#side-a .thumb[data-value=down]")
    playwright.expect(page.locator("#feedback-note")).to_have_text("recorded: A thumbs down")
    page.goto(url + "/monitor?run=tiny-lora")
    row = page.locator("#feedback-table tbody tr", has_text="tiny-lora")
    playwright.expect(row).to_contain_text("1 / 0")
    playwright.expect(page.locator("#chart-feedback")).to_have_attribute("data-points", "2")  # a bar per model
    playwright.expect(page.locator("#chart-feedback")).to_contain_text("tiny-lora")
    assert (root / "tiny-lora" / "monitor.db").is_file()


def test_start_page_shows_a_config_error(dashboard, page) -> None:
    url, _ = dashboard
    page.goto(url + "/start")
    page.fill("#config", "no-such-config.yaml")
    page.click("#start")
    playwright.expect(page.locator("#start-error")).to_contain_text("no-such-config.yaml not found")
