"""benchmarks/bench_train.py hands every worker the environment its parent asked for (issue 17: the
--omp-wait-policy flag once never reached the workers, which re-parsed their own default)."""

import json

import numpy as np
import pytest

from tests.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_train")


def start_worker(bench, tmp_path, policy, monkeypatch, parent_policy):
    """A real torch-nn-rnn worker on a tiny problem (batch 2, maxlen 3, 4-d vectors, 3 units)."""
    if parent_policy is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", parent_policy)
    ids, labels, embeddings = bench.synthetic_data(2, 2, 3, 4, 10, 1.1)
    np.savez(tmp_path / "data.npz", ids=ids, labels=labels, embeddings=embeddings)
    args = bench.parse_args(["--units", "3", "--omp-wait-policy", policy, "--target-seconds", "0.01",
                             "--warmup", "1"])
    log = open(tmp_path / "worker.log", "w")
    worker = bench.Worker("torch-nn-rnn", ("default", "threads=1"), 3, args, str(tmp_path), log)
    try:
        assert worker.ready(), (tmp_path / "worker.log").read_text()
        worker.run("threads=1")
        worker.close()
    finally:
        worker.proc.kill()
        log.close()
    return worker


@pytest.mark.parametrize("policy, parent, seen", [("inherit", None, None), ("active", "PASSIVE", "ACTIVE")])
def test_worker_runs_under_the_policy_the_parent_asked_for(bench, tmp_path, monkeypatch, policy, parent, seen):
    worker = start_worker(bench, tmp_path, policy, monkeypatch, parent)
    assert worker.environment["OMP_WAIT_POLICY"] == seen
    assert len(worker.seconds["threads=1"]) == 1 and worker.seconds["default"] == []


def test_worker_env_adds_only_what_the_benchmark_must_choose(bench):
    base = {"PATH": "/bin", "OMP_WAIT_POLICY": "ACTIVE"}
    assert bench.worker_env("torch-nn-rnn", "inherit", None, base) == base
    assert bench.worker_env("loopynet-torch", "passive", None, base) == {
        "PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE", "LOOPYNET_KERNEL": "torch"}
    env = bench.worker_env("keras-jax", "inherit", 1, {})
    assert env["KERAS_BACKEND"] == "jax" and "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
    assert "XLA_FLAGS" not in bench.worker_env("keras-jax", "inherit", None, {})


def test_loopynet_workers_run_as_its_cli_chooses_and_peers_keep_their_default(bench, monkeypatch):
    """With the parent's OMP_WAIT_POLICY unset: loopynet's compiled path gets the CLI's PASSIVE, its pure-torch
    fallback and every peer nothing (idle machine faked); a value the parent set reaches every worker."""
    monkeypatch.setattr(bench, "kernels_expected", lambda device, env: env.get("LOOPYNET_KERNEL") != "torch")
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert bench.worker_env("loopynet", "inherit", None, {})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in bench.worker_env("loopynet-torch", "inherit", None, {})
    for peer in ("torch-nn-rnn", "keras-tensorflow", "keras-jax", "anchor"):
        assert "OMP_WAIT_POLICY" not in bench.worker_env(peer, "inherit", None, {})
    assert bench.worker_env("loopynet", "inherit", None, {"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_best_of_peers_picks_each_peer_fastest_variant(bench):
    def row(peer, variant, sps):
        return {"peer": peer, "variant": variant, "samples_per_s": sps, "median": float(np.median(sps))}

    rows = {f"{p} {v}": row(p, v, s) for p, v, s in [
        ("loopynet", "default", [600.0, 800.0]), ("torch-nn-rnn", "default", [100.0, 100.0]),
        ("torch-nn-rnn", "threads=1", [200.0, 100.0]), ("keras-jax", "fit", [120.0, 160.0])]}
    bench.summarise(rows)
    best = bench.best_of_peers(rows)
    assert best["peers"]["torch-nn-rnn"]["default"] == {"variant": "default", "samples_per_s": 100.0}
    assert best["peers"]["torch-nn-rnn"]["best"]["variant"] == "threads=1"  # median 150 > 100
    assert best["peers"]["torch-nn-rnn"]["best"]["loopynet_over_this"] == {"median": 5.5, "min": 3.0, "max": 8.0}
    assert best["best_baseline"] == "keras-jax"  # its ratios 5 and 5: median 5 < 5.5
