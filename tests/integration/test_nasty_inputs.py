"""A catalogue of hostile inputs through the CLI: no traceback reaches the user, every refusal names the file,
and for what is read, rows in == rows kept + rows rejected (each rejected row written out with its reason).

The files are made here (some are large or binary), under names saying what is wrong with them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration
HEADER = "tweet\tlabel\n"


def _chats() -> str:
    chats = [
        [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}],  # assistant first
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],  # two user turns
        [{"role": "system", "content": "s"}],  # no user turn
        "not a list",
        [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}],  # unknown role
        [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "fine"}],  # the one good row
    ]
    return "".join(json.dumps({"messages": c}) + "\n" for c in chats)


def _files(folder: Path) -> dict[str, tuple[Path, dict]]:
    """name -> (file, the data section to read it with)."""
    rng = random.Random(0)
    tsv = {"format": "classification", "columns": {"text": "tweet", "label": "label"}}
    made: dict[str, tuple[bytes | str, dict, str]] = {
        "binary": (bytes(rng.randrange(256) for _ in range(20_000)), tsv, "tsv"),
        "utf16": ((HEADER + "à bɔ̀ wá\tpositive\nṣé o dáa\tnegative\n").encode("utf-16"), tsv, "tsv"),
        "latin1": ((HEADER + "café olé\tpositive\nna wa o\tnegative\n").encode("latin-1"), tsv, "tsv"),
        "empty": (b"", tsv, "tsv"),
        "header-only": (HEADER, tsv, "tsv"),
        "ten-mb-line": (HEADER + "a" * 10_000_000 + "\tpositive\nfine row\tnegative\n", tsv, "tsv"),
        "ragged-columns": (HEADER + "ok row\tpositive\ntoo\tmany\tcolumns\nmissing\n\tnegative\n", tsv, "tsv"),
        "nul-in-text": (HEADER + "has \x00 nul\tpositive\nnormal\tnegative\n", tsv, "tsv"),
        "labels-outside-the-set": (
            HEADER + "row one\tpositive\nrow two\tPOSITIVE!!\nrow three\tneutral\n",
            {**tsv, "labels": ["positive", "negative"]},
            "tsv",
        ),
        "deeply-nested-json": (
            '{"text": "ok", "label": "positive"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "label": "x"}\n',
            {"format": "classification", "columns": {"text": "text", "label": "label"}},
            "jsonl",
        ),
        "broken-json-lines": (
            '{"text": "a", "label": "positive"}\n{not json\n[1, 2, 3]\n"str"\n{"text": null, "label": 5}\n',
            {"format": "classification", "columns": {"text": "text", "label": "label"}},
            "jsonl",
        ),
        "chats-in-wrong-role-order": (_chats(), {"format": "messages"}, "jsonl"),
    }
    out = {}
    for name, (content, data, suffix) in made.items():
        path = folder / f"{name}.{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        out[name] = (path, data)
    return out


# Files refused as a whole (no rows could be read); everything else must be read with its bad rows rejected.
REFUSED = {"binary", "latin1", "empty", "header-only"}


def test_every_nasty_file_is_refused_or_read_with_every_row_accounted_for(tmp_path: Path, capsys) -> None:
    files = _files(tmp_path)
    tried = 0
    for name, (path, data) in files.items():
        for argv in (["data", "inspect", str(path)], None):
            if argv is None:
                config = {
                    "name": f"nasty-{name}",
                    "output_dir": str(tmp_path / "runs"),
                    "data": {"train": str(path), **data, "split": {"validation": 0.0, "test": 0.0}},
                }
                (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
                argv = ["data", "prepare", str(tmp_path / "config.yaml")]
            code = main(argv)  # any exception other than the CLI's own handling fails the test here
            out = capsys.readouterr()
            tried += 1
            assert "Traceback" not in out.out + out.err, (name, argv)
            if name in REFUSED:
                assert code == 2, (name, argv, out.out[-500:])
                assert path.name in out.err.replace("\n", ""), (name, out.err)
                continue
            assert code == 0, (name, argv, out.err[-800:])
        if name in REFUSED:
            continue
        run = tmp_path / "runs" / f"nasty-{name}" / "data"
        manifest = json.loads((run / "manifest.json").read_text())
        rejects = [json.loads(line) for line in (run / "rejects.jsonl").read_text().splitlines()]
        kept = sum(split["rows"] for split in manifest["splits"].values())
        sampled_out = sum((manifest.get("sampled_out") or {}).values())
        assert manifest["input_rows"] == kept + len(rejects) + sampled_out, (name, manifest, rejects)
        for reject in rejects:  # each says where and why
            assert reject["file"] == str(path) and reject["line"] >= 1 and reject["reason"], reject
    print(f"{len(files)} nasty files, {tried} commands: none raised, every row accounted for")


def test_what_the_catalogue_rejects_and_why(tmp_path: Path, capsys) -> None:
    files = _files(tmp_path)
    reasons: dict[str, list[str]] = {}
    for name in ("ragged-columns", "labels-outside-the-set", "deeply-nested-json", "chats-in-wrong-role-order"):
        path, data = files[name]
        config = {"name": name, "output_dir": str(tmp_path / "runs"), "data": {"train": str(path), **data}}
        config["data"]["split"] = {"validation": 0.0, "test": 0.0}
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        assert main(["data", "prepare", str(tmp_path / "c.yaml")]) == 0
        capsys.readouterr()
        lines = (tmp_path / "runs" / name / "data" / "rejects.jsonl").read_text().splitlines()
        reasons[name] = [json.loads(line)["reason"] for line in lines]
    assert "expected 2 columns (tweet, label), found 3" in reasons["ragged-columns"]
    assert any("POSITIVE!!" in r or "label" in r for r in reasons["labels-outside-the-set"])
    assert len(reasons["labels-outside-the-set"]) == 2  # POSITIVE!! and neutral; positive is kept
    assert reasons["deeply-nested-json"] == ["invalid JSON"] or "JSON" in reasons["deeply-nested-json"][0]
    assert any("expected a user turn first" in r for r in reasons["chats-in-wrong-role-order"])
    assert any("expected an assistant turn" in r for r in reasons["chats-in-wrong-role-order"])
    assert any("unknown role 'wizard'" in r for r in reasons["chats-in-wrong-role-order"])


def test_hostile_configs_are_refused_quickly_with_the_reason(tmp_path: Path, capsys) -> None:
    """A "billion laughs" of aliases, nesting too deep to parse, non-UTF-8 bytes, and one --set bomb."""
    bomb = ["name: bomb", 'a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, this in zip("abcdefg", "bcdefgh", strict=True):
        bomb.append(f"{this}: &{this} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb.append("data: {train: x.tsv, groups: *h}")
    cases = {
        "aliases.yaml": ("\n".join(bomb) + "\n", "through YAML anchors and aliases"),
        "deep.yaml": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        "latin1.yaml": ("name: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    }
    for filename, (content, words) in cases.items():
        path = tmp_path / filename
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        assert main(["config", "show", str(path)]) == 2
        err = "".join(capsys.readouterr().err.split())  # the terminal wraps long lines anywhere
        assert words.replace(" ", "") in err and filename in err, (filename, err)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"name": "g", "data": {"train": "x.tsv"}}))
    value = "[" + ",".join(["&a [1,2,3,4,5,6,7,8,9,10]"] + ["*a"] * 20_000) + "]"
    assert main(["config", "show", str(good), "--set", f"data.groups={value}"]) == 2
    assert "throughYAMLanchorsandaliases" in "".join(capsys.readouterr().err.split())
