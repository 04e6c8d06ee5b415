"""After ``tunesmith tune``: the default config and the study's best config, each trained again and scored on
the held-out test split, compared by paired bootstrap on the same test rows.

A study picks its best trial by the validation rows it also reports the gain on, so its own best-against-default
figure is optimistic (the best of several noisy draws). The test split took no part in the choice: this is the
figure to quote.

    python bench/hpo_test_split.py bench/afrisenti/pcm-tune.yaml bench/afrisenti/runs/pcm-tune/hpo/best.yaml

Both runs skip the prompting and encoder baselines, the forgetting suite and exports (as trials do) and go to
``--output-dir``; the comparison is printed and, with ``--json``, written.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SETTINGS = ["eval.baselines=[]", "eval.encoder_baseline=false", "eval.retention=none", "export.to=[]"]


def train_and_score(config: Path, name: str, output_dir: Path) -> Path:
    sets = [*SETTINGS, f"name={name}", f"output_dir={output_dir.resolve()}", "eval.split=test"]
    command = [sys.executable, "-m", "tunesmith.cli.main", "run", str(config), "--overwrite"]
    for item in sets:
        command += ["--set", item]
    subprocess.run(command, check=True)
    return output_dir / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="the study's config (its own values are the default)")
    parser.add_argument("best", type=Path, help="the study's hpo/best.yaml")
    parser.add_argument("--metric", default="weighted_f1")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/hpo-test-split"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from tunesmith.hpo.results import paired_runs

    default = train_and_score(args.config, "default", args.output_dir)
    best = train_and_score(args.best, "best", args.output_dir)
    test = paired_runs(str(best), str(default), args.metric)
    if test is None:
        raise SystemExit("the two runs did not score the same test rows with a classification metric")
    scores = {
        name: json.loads((run / "eval" / "report.json").read_text())["models"]
        for name, run in (("default", default), ("best", best))
    }
    for name, models in scores.items():
        tuned = next(m for k, m in models.items() if k.startswith("tuned"))
        print(
            f"{name}: {args.metric} {tuned[args.metric]:.4f} {tuned['ci'][args.metric]}, "
            f"accuracy {tuned['accuracy']:.4f}"
        )
    print(
        f"best - default on the same {test['rows']} test rows: {test['delta']:+.4f} "
        f"[{test['low']:+.4f}, {test['high']:+.4f}], p = {test['p_value']:.3g}"
    )
    if args.json:
        args.json.write_text(json.dumps({"test": test, "scores": scores}, indent=1, default=str))


if __name__ == "__main__":
    main()
