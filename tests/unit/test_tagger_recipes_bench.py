"""benchmarks/tagger_recipes.py: a run continued from another's checkpoint counts the CPU of both, and the final
recipe's list of runs survives a collection without --final."""

import json
import sys

import pytest

from tests.benchmark_scripts import load_benchmark


def time_report(user: float) -> str:
    return (f"\tUser time (seconds): {user}\n\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.5\n"
            "\tMaximum resident set size (kbytes): 1000\n\tExit status: 0\n")


def run_folder(root, name, user, val_f1, resumed_from=None):
    folder = root / name
    (folder / "model").mkdir(parents=True)
    (folder / "meta.txt").write_text(f"start 2026-12-01T04:00:00 load 1.0 2.0 3.0\nflags: --epochs 6\n"
                                     + (f"resumed from {resumed_from}\n" if resumed_from else ""))
    (folder / "time.txt").write_text(time_report(user))
    (folder / "model" / "history.json").write_text(json.dumps([{"epoch": 1, "val_f1": val_f1, "kept": True}]))
    metrics = {"f1": val_f1, "precision": 0.9, "recall": 0.9, "strict": {"f1": val_f1}, "token_accuracy": 0.98,
               "oov_rate": 0.01, "per_type": {t: {"f1": 0.5} for t in ("PER", "ORG", "LOC", "MISC")}}
    (folder / "valid.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("tagger_recipes")


def test_a_resumed_run_counts_the_cpu_of_the_runs_it_continues(bench, tmp_path):
    run_folder(tmp_path, "a-e6", 100.5, 0.93)
    (tmp_path / "a-cut").mkdir()  # a run stopped by hand: no model, its time and meta only
    (tmp_path / "a-cut" / "meta.txt").write_text("start x load 1 1 1\nflags: --resume\nresumed from a-e6\n")
    (tmp_path / "a-cut" / "time.txt").write_text(time_report(200.25))
    row = bench.collect(run_folder(tmp_path, "a-full", 3.0, 0.94, resumed_from="a-cut"))
    assert (row["resumed_from"], row["user_cpu_s"], row["user_cpu_s_total"]) == ("a-cut", 3.0, 303.75)
    assert "resumed_from" not in bench.collect(tmp_path / "a-e6")


def test_the_final_recipes_runs_are_kept_without_final(bench, tmp_path, monkeypatch):
    out = tmp_path / "recipes.json"
    out.write_text(json.dumps({"runs": [], "final_recipe": {"runs": ["s0", "s1"]}}))
    monkeypatch.setattr(sys, "argv", ["tagger_recipes.py", str(run_folder(tmp_path, "x", 1.0, 0.9)), "--out", str(out)])
    bench.main()
    saved = json.loads(out.read_text())
    assert saved["final_recipe"] == {"runs": ["s0", "s1"]} and [r["run"] for r in saved["runs"]] == ["x"]
