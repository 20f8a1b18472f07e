"""benchmarks/imdb_recipes.py reads /usr/bin/time reports and training histories into its records exactly."""

import pytest

from tests.benchmark_scripts import load_benchmark


TIME_REPORT = """\tCommand being timed: "python -m loopynet.cli train ..."
\tUser time (seconds): 379.28
\tSystem time (seconds): 12.01
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:10:28.94
\tMaximum resident set size (kbytes): 2199552
"""


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("imdb_recipes")


def test_time_report_values(bench):
    record = bench.parse_time(TIME_REPORT, ["9.60", "9.17", "8.18"])
    assert record == {"wall_s": 3600 + 600 + 28.94, "user_cpu_s": 379.28, "peak_rss_gb": 2199552 / 2**20,
                      "load_at_start": [9.6, 9.17, 8.18]}


def test_validation_of_a_single_network_an_ensemble_and_an_ngram_mix(bench):
    single = [{"epoch": 1, "val_accuracy": 0.89, "val_loss": 0.28, "kept": False},
              {"epoch": 2, "val_accuracy": 0.90, "val_loss": 0.25, "kept": True},
              {"epoch": 3, "val_accuracy": 0.91, "val_loss": 0.26, "kept": False}]
    assert bench.validation_of(single) == {"val_accuracy": 0.90, "val_loss": 0.25,
                                           "epochs_val_accuracy": [[0, 1, 0.89], [0, 2, 0.90], [0, 3, 0.91]]}
    ensemble = [{"member": 0, "epoch": 1, "val_accuracy": 0.89, "val_loss": 0.28, "kept": True},
                {"member": 1, "epoch": 1, "val_accuracy": 0.88, "val_loss": 0.29, "kept": True},
                {"member": "ensemble", "val_accuracy": 0.905, "val_loss": 0.24}]
    assert bench.validation_of(ensemble) == {"val_accuracy": 0.905, "val_loss": 0.24,
                                             "epochs_val_accuracy": [[0, 1, 0.89], [1, 1, 0.88]]}
    log = ("n-gram model fitted in 23s\nmix on validation: logit = 0.476 * rnn + 0.633 * ngram + -0.136; "
           "val_accuracy rnn 0.9024, ngram 0.9240, mixed 0.9304\n")
    assert bench.validation_of([], log) == {"epochs_val_accuracy": [], "mix": "0.476 * rnn + 0.633 * ngram + -0.136",
                                            "val_accuracy_rnn": 0.9024, "val_accuracy_ngram": 0.924,
                                            "val_accuracy": 0.9304}


def test_files_beside_a_run_keep_its_whole_name(bench, tmp_path):
    """A run named with a dot ("ensemble-ema0.999", seed 1) keeps its own log, time and test files: two seeds
    never share one (Path.with_suffix would have turned both into "ensemble-ema0.log")."""
    seed1, seed2 = tmp_path / "ensemble-ema0.999-s1", tmp_path / "ensemble-ema0.999-s2"
    assert bench.beside(seed1, ".log") == tmp_path / "ensemble-ema0.999-s1.log"
    assert bench.beside(seed1, ".test.json") != bench.beside(seed2, ".test.json")
