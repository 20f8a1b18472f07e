"""benchmarks/bench_recipe_time.py: the two arms differ only in LOOPYNET_KERNEL, run the same command, and the
summary's ratios are torch.nn over fused of the per-arm medians."""

import pytest

from tests.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_recipe_time")


def test_arms_differ_only_in_the_kernel_switch(bench):
    base = {"PATH": "/bin", "LOOPYNET_KERNEL": "jit", "OMP_NUM_THREADS": "7"}
    fused, torch_nn = bench.arm_env("fused", 2, base), bench.arm_env("torch.nn", 2, base)
    assert fused == {"PATH": "/bin", "OMP_NUM_THREADS": "2"}  # an inherited switch does not leak into either arm
    assert torch_nn == {"PATH": "/bin", "OMP_NUM_THREADS": "2", "LOOPYNET_KERNEL": "torch"}


def test_train_command_is_the_preset_with_the_slice(bench, tmp_path):
    args = bench.argparse.Namespace(preset="imdb-rnn", seed=3, threads=1, limit=3000, epochs=1)
    command = bench.train_command(args, tmp_path / "out")
    assert command[command.index("--preset") + 1] == "imdb-rnn"
    assert command[command.index("--limit") + 1] == "3000" and command[command.index("--epochs") + 1] == "1"
    assert command[command.index("--seed") + 1] == "3" and command[command.index("--threads") + 1] == "1"
    whole = bench.train_command(bench.argparse.Namespace(preset="imdb-rnn", seed=0, threads=2, limit=0, epochs=0),
                                tmp_path / "out")
    assert "--limit" not in whole and "--epochs" not in whole  # 0: the preset's own


def test_summary_ratios_are_torch_over_fused_medians(bench):
    runs = [{"arm": "fused", "wall_s": 10.0, "user_cpu_s": 9.0, "epochs_s": 4.0, "peak_rss_gb": 1.0,
             "val_accuracy": 0.85},
            {"arm": "torch.nn", "wall_s": 30.0, "user_cpu_s": 45.0, "epochs_s": 20.0, "peak_rss_gb": 1.5,
             "val_accuracy": 0.851},
            {"arm": "fused", "wall_s": 14.0, "user_cpu_s": 11.0, "epochs_s": 6.0, "peak_rss_gb": 1.1,
             "val_accuracy": 0.852},
            {"arm": "torch.nn", "wall_s": 34.0, "user_cpu_s": 55.0, "epochs_s": 24.0, "peak_rss_gb": 1.4,
             "val_accuracy": 0.853}]
    result = bench.summary(runs)
    assert result["wall_ratio"] == 32.0 / 12.0 and result["user_cpu_ratio"] == 50.0 / 10.0
    assert result["epochs_ratio"] == 22.0 / 5.0
    assert result["arms"]["fused"]["peak_rss_gb"] == 1.1 and result["arms"]["torch.nn"]["val_accuracy"] == [0.851, 0.853]
    assert "torch.nn / fused: wall 2.67x, user CPU 5.00x, training loop (epochs) 4.40x" in bench.table(result)


def test_epoch_seconds_sum_the_history(bench):
    history = [{"epoch": 1, "seconds": 12.5, "val_seconds": 1.5}, {"epoch": 2, "seconds": 10.0, "val_seconds": 1.0},
               {"member": "ensemble", "val_accuracy": 0.9}]
    assert bench.epoch_seconds(history) == {"epochs_s": 22.5, "validation_s": 2.5}


def test_tagger_preset_times_tag_train_and_reads_its_entity_f1(bench, tmp_path):
    args = bench.argparse.Namespace(preset="tagger", seed=1, threads=2, limit=0, epochs=3)
    command = bench.train_command(args, tmp_path / "out")
    assert command[command.index("train") - 1] == "tag" and "--preset" not in command
    classifier = bench.train_command(bench.argparse.Namespace(preset="imdb-rnn", seed=1, threads=2, limit=0, epochs=3),
                                     tmp_path / "out")
    data = command[command.index("--data") + 1]
    assert data != classifier[classifier.index("--data") + 1] and command[command.index("--epochs") + 1] == "3"
    history = [{"epoch": 1, "val_f1": 0.80, "kept": False}, {"epoch": 2, "val_f1": 0.85, "kept": True},
               {"epoch": 3, "val_f1": 0.84, "kept": False}]
    assert bench.validation(history) == {"val_f1": 0.85, "epochs_val_f1": [[1, 0.80], [2, 0.85], [3, 0.84]]}
    assert bench.validation(history[:1] + [{"epoch": 2, "val_f1": 0.9}])["val_f1"] == 0.9  # none kept: the last
    runs = [{"arm": arm, "wall_s": 1.0, "user_cpu_s": 1.0, "epochs_s": 1.0, "peak_rss_gb": 1.0, "val_f1": 0.9}
            for arm in ("fused", "torch.nn")]
    assert "val entity F1" in bench.table(bench.summary(runs)) and "0.9000" in bench.table(bench.summary(runs))
