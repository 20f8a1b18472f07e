"""benchmarks/book_seeds.py --add merges new seeds into a results file and recomputes the summary exactly."""

import pytest

from tests.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("book_seeds")


def row(pipeline, seed, val, test, sample_1):
    return {"pipeline": pipeline, "seed": seed, "val_accuracy": [0.5, val], "test_accuracy": test,
            "sample_1_probability": sample_1, "oov_rate": 0.03}


def test_added_seeds_replace_the_same_runs_and_the_summary_covers_all(bench):
    old = {"note": "tokenizer version 2", "threads": 1,
           "runs": [row("book", 0, 0.70, 0.71, 0.6), row("default", 0, 0.80, 0.79, 0.4), row("default", 1, 0.70, 0.69, 0.7)]}
    results = bench.merged(old, [row("default", 1, 0.78, 0.77, 0.3), row("book", 2, 0.76, 0.75, 0.2),
                                 row("default", 2, 0.82, 0.81, 0.6)])
    assert [(r["pipeline"], r["seed"]) for r in results["runs"]] == [
        ("book", 0), ("book", 2), ("default", 0), ("default", 1), ("default", 2)]
    assert results["runs"][3]["test_accuracy"] == 0.77  # seed 1 replaced
    assert results["note"] == "tokenizer version 2"
    default = results["summary"]["default"]
    assert default["val_accuracy_mean"] == pytest.approx((0.80 + 0.78 + 0.82) / 3)
    assert default["test_accuracy_mean"] == pytest.approx((0.79 + 0.77 + 0.81) / 3)
    assert (default["val_at_least_0.75"], default["sample_1_negative"], default["runs"]) == (3, 2, 3)
    book = results["summary"]["book"]
    assert (book["val_at_least_0.75"], book["sample_1_negative"], book["runs"]) == (1, 1, 2)
