"""Screenshots of the dashboard over a runs folder, for the docs (README, docs/ui.md).

    python scripts/ui_screenshots.py --runs runs --run quickstart-pcm-sentiment --out docs/images [--playground]

Starts the dashboard in this process on a free port, opens each page in Debian's Chromium through Playwright,
and saves ``ui-<page>.png``. ``--playground`` also loads the run, asks both models one prompt and records which
answer is better (that writes to the run's monitor.db, like any use of the playground).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--run", required=True, help="The run to show on the run and monitoring pages.")
    parser.add_argument("--compare", default=None, help="A second run for the compare page.")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--playground", action="store_true")
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from tunesmith.ui.app import create_ui_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_ui_app(args.runs), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    args.out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        pages = {"runs": "/", "run": f"/runs/{args.run}", "monitor": f"/monitor?run={args.run}"}
        if args.compare:
            pages["compare"] = f"/compare?run={args.run}&run={args.compare}"
        for name, url in pages.items():
            page.goto(base + url)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out / f"ui-{name}.png"))
            print(f"wrote {args.out / f'ui-{name}.png'}")
        if args.playground:
            page.goto(base + "/playground")
            page.select_option("#serve-choice", args.run)
            page.click("#serve")
            expect(page.locator("#slot-state")).to_have_text("ready", timeout=300_000)
            page.fill("#prompt", "Na wa for this government o, nothing dey work.")
            page.click("#send")
            expect(page.locator("#b-better")).to_be_enabled(timeout=300_000)
            page.click("#b-better")
            page.wait_for_timeout(500)
            page.screenshot(path=str(args.out / "ui-playground.png"))
            print(f"wrote {args.out / 'ui-playground.png'}")
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()
