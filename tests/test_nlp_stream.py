"""The stream set (nlp/data/stream_sample.jsonl): drawn by the real parsers from the recorded payloads,
halves fixed by a hash, and its bench (bench/nlp_stream.py) runs on it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from nlp.dataset import load_dataset

ROOT = Path(__file__).resolve().parent.parent
STREAM = ROOT / "nlp" / "data" / "stream_sample.jsonl"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _lines() -> list[dict]:
    return [json.loads(line) for line in STREAM.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_stream_set_is_what_the_parsers_draw_from_the_payloads():
    """Every item, with its id, title and half, comes out of the recorded payloads through the real parsers:
    nothing in the file was written by hand except its labels and rationale."""
    draw = _bench("stream_draw")
    drawn = {}
    for rec, payload in draw.records():
        it = draw.to_item(rec, payload)
        drawn.setdefault(it["id"], it)
    stored = _lines()
    assert [d["id"] for d in stored] == list(drawn)
    for d in stored:
        assert {k: v for k, v in d.items() if k not in ("labels", "rationale")} == drawn[d["id"]]
    by_id = {d["id"]: d for d in stored}
    # Checked by hand against the payloads.
    tobacco = by_id["stream-809be49ea6"]
    assert tobacco["source"] == "ep_odp"
    assert tobacco["payload"] == "crawlers/replay/bundle/bodies/REAL-odp_procedure_2025-0581.json"
    assert tobacco["title"] == (
        "Amending Directive (EU) 2020/262 as regards the general arrangements for excise duty in respect of "
        "tobacco and tobacco related products"
    )
    assert tobacco["labels"] == [] and tobacco["rationale"].startswith("near-miss:")
    mica = by_id["stream-a035231261"]
    assert mica["celex"] == "52020SC0380" and mica["eurovoc"] == ["financial legislation"]


def test_stream_halves_are_fixed_by_the_id_hash():
    draw = _bench("stream_draw")
    stored = _lines()
    assert all(d["split"] == draw.half(d["id"]) for d in stored)
    assert {d["split"] for d in stored} == {"tune", "check"}
    assert len(load_dataset(STREAM)) == len(stored) >= 100


def test_stream_bench_runs_on_the_set(capsys):
    bench = _bench("nlp_stream")
    bench.main(["--no-model"])
    out = capsys.readouterr().out
    rows = {line.split()[0] + " " + line.split()[1]: line.split() for line in out.splitlines() if "rules alone" in line}
    assert set(rows) == {"tune: rules", "check: rules"}
    sizes = {k: int(v[3]) for k, v in rows.items()}
    halves = {d["split"] for d in _lines()}
    assert halves == {"tune", "check"} and sum(sizes.values()) == len(_lines())
    near = {k: v[6] for k, v in rows.items()}
    n_near = {h: sum(d["split"] == h and d["rationale"].startswith("near-miss:") for d in _lines()) for h in halves}
    assert near["tune: rules"].endswith(f"/{n_near['tune']}") and near["check: rules"].endswith(f"/{n_near['check']}")


def test_stream_figures_count_false_alerts_and_catches():
    bench = _bench("nlp_stream")
    items = load_dataset(STREAM)[:4]
    gold = [set(i.labels) for i in items]
    preds = [g | {"deai"} for g in gold]
    f = bench.stream_figures(items, preds, ["deai", "numerique"])
    assert f["false_alerts"] == sum("deai" not in g for g in gold)
    assert f["false_alerts_per_100"] == 100.0 * f["false_alerts"] / 4
    assert f["wrong"] == ({"deai": f["false_alerts"]} if f["false_alerts"] else {})


def test_stream_bench_runs_as_a_script(tmp_path):
    """As an analyst runs it: its own process and a fresh VEILLE_HOME, where the config is checked against
    the source kinds (which the bench must import: nothing else in its process does)."""
    env = {**os.environ, "VEILLE_HOME": str(tmp_path), "COLUMNS": "200"}
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "nlp_stream.py"), "--no-model"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "tune: rules alone" in res.stdout and "check: rules alone" in res.stdout
