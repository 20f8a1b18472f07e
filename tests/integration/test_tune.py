"""`loopynet tune` end to end on a 200-review slice of the real IMDB archive with 50-d GloVe vectors:
SQLite results, resuming, a stale trial of a killed worker, and two workers on a real PostgreSQL.

The PostgreSQL server comes from $LOOPYNET_TEST_POSTGRES_URL, else from `scripts/postgres.sh start`
(stopped at the end); when neither works the test fails with the reason, it never skips.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from loopynet.cli import build_parser, main
from loopynet.tune import search
from loopynet.tune.search import TuneSettings, epoch_reporter, open_storage, open_study, reproduce_command, score
from loopynet.tune.space import load_space
from tests.conftest import GLOVE_50D, IMDB

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

ROOT = Path(__file__).resolve().parents[2]
DATA = IMDB
VECTORS = GLOVE_50D
SPACE = """
[maxlen]
low = 20
high = 60
step = 20
[units]
low = 4
high = 12
[lr]
low = 1e-3
high = 1e-2
log = true
[batch_size]
choices = [16, 32]
[epochs]
choices = [1, 2]
"""


@pytest.fixture(scope="module")
def space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "space.toml"
    path.write_text(SPACE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def postgres_url():
    """$LOOPYNET_TEST_POSTGRES_URL, or a server started (and stopped) with scripts/postgres.sh."""
    if os.environ.get("LOOPYNET_TEST_POSTGRES_URL"):
        yield os.environ["LOOPYNET_TEST_POSTGRES_URL"]
        return
    script = ROOT / "scripts" / "postgres.sh"
    started = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=600)
    if started.returncode:
        pytest.fail(f"no PostgreSQL: LOOPYNET_TEST_POSTGRES_URL is unset and scripts/postgres.sh start "
                    f"failed (exit {started.returncode}):\n{started.stderr[-3000:]}")
    exports = dict(shlex.split(line)[1].split("=", 1) for line in started.stdout.splitlines() if line.startswith("export "))
    try:
        yield exports["LOOPYNET_TEST_POSTGRES_URL"]
    finally:
        subprocess.run(["bash", str(script), "stop", exports["LOOPYNET_TEST_POSTGRES_DIR"]], timeout=120)


def tune(out: Path, space: Path, *extra: str, vectors: Path = VECTORS) -> int:
    return main(["tune", "--data", str(DATA), "--vectors", str(vectors), "--space", str(space), "--limit", "200",
                 "--out", str(out), "--quiet", *extra])


def trials_of(out: Path, study: str = "loopynet", storage: str | None = None) -> list:
    return optuna.load_study(study_name=study, storage=storage or f"sqlite:///{out / 'study.db'}").trials


def test_search_records_trials_and_writes_a_reproducible_best(tmp_path, space_file, capsys):
    out = tmp_path / "run"
    assert tune(out, space_file, "--sampler", "random", "--trials", "3", "--save-best") == 0
    trials = trials_of(out)
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        assert {"config", "history", "seconds", "worker", "torch_threads"} <= set(t.user_attrs)
        assert len(t.user_attrs["history"]) == t.params["epochs"] == t.user_attrs["config"]["train"]["epochs"]
        assert t.value == t.user_attrs["history"][-1]["val_accuracy"]

    best = json.loads((out / "best.json").read_text())
    assert best["value"] == max(t.value for t in trials)
    assert best["trials"] == {"COMPLETE": 3}
    assert best["retrained_val_accuracy"] == best["value"]  # the same seed and slice reproduce the trial
    assert (out / "best-model" / "config.json").is_file()
    with open(out / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["number"] for r in rows] == ["0", "1", "2"] and {r["state"] for r in rows} == {"COMPLETE"}
    assert {"value", "seconds", "params_units", "params_lr"} <= set(rows[0])
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert f"reproduce: OMP_NUM_THREADS={best['torch_threads']} {best['command']}" in capsys.readouterr().out
    args = build_parser().parse_args(shlex.split(best["command"])[1:])
    assert (args.command, args.limit, args.seed, args.data) == ("train", 200, 0, str(DATA))
    for name, value in best["params"].items():
        assert getattr(args, name) == value


def test_rerun_resumes_and_counts_finished_trials(tmp_path, space_file):
    out = tmp_path / "run"
    assert tune(out, space_file, "--trials", "2") == 0
    first = [t.params for t in trials_of(out)]
    assert tune(out, space_file, "--trials", "4") == 0
    assert tune(out, space_file, "--trials", "4") == 0  # nothing left to run
    trials = trials_of(out)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert [t.params for t in trials[:2]] == first
    assert all(t.params not in first for t in trials[2:])  # a resumed sampler does not replay the first run


def test_trial_of_a_dead_worker_is_failed_and_retried(tmp_path, space_file):
    out = tmp_path / "run"
    out.mkdir()
    settings = TuneSettings(str(DATA), str(VECTORS), out, load_space(space_file), heartbeat=1)
    study = open_study(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "heartbeat is supposed to be used with Study.optimize"
        dead = study.ask()
    settings.space.suggest(dead)
    study._storage.record_heartbeat(dead._trial_id)  # then the worker "dies": no more heartbeats
    # older than the grace period of 2 x --heartbeat: SQLite's CURRENT_TIMESTAMP has whole seconds, so a
    # heartbeat recorded at t.0 looks stale (> 2 s) only from t+3 on (2.5 s failed CI once: stored age 2 s)
    time.sleep(3.2)

    assert tune(out, space_file, "--trials", "2", "--heartbeat", "1") == 0
    trials = trials_of(out)
    states = [t.state for t in trials]
    assert states[0] == TrialState.FAIL
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 2
    retries = [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 0]
    assert len(retries) == 1 and retries[0].params == trials[0].params


PAUSED_WORKER = """
import os, signal, sys
from pathlib import Path
from loopynet.tune import search
from loopynet.tune.space import load_space

data, vectors, out, space, when = sys.argv[1:]
real_objective, real_reporter = search.objective, search.epoch_reporter

def pause(trial):  # the whole process stops, its heartbeat thread too
    if trial.number == 0:
        os.kill(os.getpid(), signal.SIGSTOP)

def reporter(trial, history):
    report = real_reporter(trial, history)
    def paused(record):
        report(record)
        if when == "during":
            pause(trial)
    return paused

def objective(trial, settings, worker=0):
    value = real_objective(trial, settings, worker)
    if when == "after":
        pause(trial)
    return value

search.objective, search.epoch_reporter = objective, reporter
settings = search.TuneSettings(data, vectors, Path(out), load_space(Path(space)), limit=200, trials=2, heartbeat=1,
                               quiet=True)
search.run_worker(settings, 0, 2, 0)
"""


@pytest.mark.parametrize("when", ["during", "after"])
def test_late_result_of_a_paused_worker_is_dropped_and_the_search_goes_on(tmp_path, space_file, when):
    """A worker stopped for 5 s (SIGSTOP) with --heartbeat 1, during training (its next write to the trial
    fails) or after it (Optuna refuses to tell the result: "Cannot tell a FAIL trial"): another worker
    fails its trial and queues a retry; the paused worker, resumed, drops its late result with one line
    and runs on (before: the search exited 2)."""
    out = tmp_path / "run"
    out.mkdir()
    child = subprocess.Popen([sys.executable, "-c", PAUSED_WORKER, str(DATA), str(VECTORS), str(out), str(space_file),
                              when], stderr=subprocess.PIPE, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    _, status = os.waitpid(child.pid, os.WUNTRACED)  # returns when the worker has stopped itself in trial 0
    assert os.WIFSTOPPED(status)
    time.sleep(5)  # its last heartbeat is now older than the grace of 2 s
    settings = TuneSettings(str(DATA), str(VECTORS), out, load_space(space_file), heartbeat=1)
    optuna.storages.fail_stale_trials(open_study(settings))  # what any other worker does before a trial
    assert trials_of(out)[0].state == TrialState.FAIL
    os.kill(child.pid, signal.SIGCONT)
    _, err = child.communicate(timeout=600)
    assert child.returncode == 0, err
    assert ("warning: trial 0 was failed while its worker was paused (no heartbeat for more than 2 s; a retry "
            "is queued): its late result is dropped") in err and "Traceback" not in err
    trials = trials_of(out)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(trials[1]) == 0
    assert trials[1].params == trials[0].params


@pytest.mark.parametrize("heartbeat, busy_ms", [(1, 500), (30, 15_000), (300, 60_000)])
def test_a_heartbeat_that_waits_out_the_busy_timeout_lands_within_the_grace(tmp_path, heartbeat, busy_ms):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat)
    with storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == busy_ms
    assert storage.grace_period == 2 * heartbeat > heartbeat + busy_ms / 1000


def test_a_lock_longer_than_the_busy_timeout_is_one_line_and_fails_no_trial(tmp_path, space_file, capfd, monkeypatch):
    """Another connection holds an exclusive SQLite lock for 3 s during trial 1, longer than the busy
    timeout of 0.5 s (--heartbeat 1): one error line with the hint, no traceback, trial 0 stays COMPLETE
    and trial 1 is not marked FAIL (before: tracebacks, and trials marked FAIL)."""
    out = tmp_path / "run"
    real_objective, lock = search.objective, {}

    def objective(trial, settings, worker=0):
        if trial.number == 1:
            connection = sqlite3.connect(out / "study.db", isolation_level=None, check_same_thread=False)
            connection.execute("BEGIN EXCLUSIVE")
            lock["release"] = threading.Timer(3.0, lambda: (connection.execute("ROLLBACK"), connection.close()))
            lock["release"].start()
        return real_objective(trial, settings, worker)

    monkeypatch.setattr(search, "objective", objective)
    assert tune(out, space_file, "--trials", "3", "--heartbeat", "1", "--pruner", "none") == 2
    lock["release"].join()
    err = capfd.readouterr().err
    assert "Traceback" not in err and [line for line in err.splitlines() if "error" in line or "warning" in line] == [
        f"loopynet tune: error: the study storage sqlite:///{out / 'study.db'} stayed locked longer than its busy "
        "timeout of 0.5 s (database is locked); run fewer --workers, or use PostgreSQL (--storage "
        "postgresql://...); run the same command again to resume"], err
    assert [t.state for t in trials_of(out)] == [TrialState.COMPLETE, TrialState.RUNNING]


def test_two_workers_share_a_postgres_study(tmp_path, space_file, postgres_url):
    study = f"two-workers-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "run"
    assert tune(out, space_file, "--trials", "4", "--workers", "2", "--storage", postgres_url, "--study", study) == 0
    trials = trials_of(out, study, postgres_url)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    assert not (out / "study.db").exists()
    assert json.loads((out / "best.json").read_text())["storage"].startswith("postgresql+psycopg2://")


def test_epoch_reporter_prunes_through_on_epoch_end():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.9))
    trial, history = study.ask(), []
    report = epoch_reporter(trial, history)
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 1"):
        report({"epoch": 1, "loss": 0.7, "val_accuracy": 0.5})
    assert history == [{"epoch": 1, "loss": 0.7, "val_accuracy": 0.5}]
    assert study.trials[0].intermediate_values == {1: 0.5}
    with pytest.raises(ValueError, match="val_split must be > 0"):
        report({"epoch": 2, "loss": 0.7})


def test_score_is_the_accuracy_of_the_returned_weights():
    history = [{"val_loss": 0.6, "val_accuracy": 0.70}, {"val_loss": 0.5, "val_accuracy": 0.72},
               {"val_loss": 0.5, "val_accuracy": 0.74}, {"val_loss": 0.9, "val_accuracy": 0.60}]
    assert score(history, {"patience": None, "restore_best": True}) == 0.60  # the book: the last epoch
    assert score(history, {"patience": 2, "restore_best": False}) == 0.60
    assert score(history, {"patience": 2, "restore_best": True}) == 0.72  # the first lowest val_loss
    # a monitor to maximise: the epoch fit restores is the first with the highest val_accuracy
    assert score(history, {"patience": 2, "restore_best": True, "monitor": "val_accuracy"}) == 0.74


def test_bad_space_is_one_error_line(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text("[neurons]\nlow = 1\nhigh = 2\n", encoding="utf-8")
    assert tune(tmp_path / "run", space, "--trials", "1") == 2
    err = capsys.readouterr().err
    assert "loopynet tune: error:" in err and "unknown option 'neurons'" in err and "units" in err


@pytest.mark.parametrize("space, message", [
    ("[dropout]\nlow = 0.5\nhigh = 1.5\n", "search space [dropout]: value 1.5 cannot be trained: dropout must be in [0, 1)"),
    ("maxlen = 0\n[units]\nlow = 4\nhigh = 8\n", "search space [units]: value 4 cannot be trained: maxlen must be >= 1"),
    ("[batch_size]\nchoices = [0, 32]\n", "search space [batch_size]: value 0 cannot be trained: batch_size must be >= 1"),
])
def test_space_values_training_rejects_stop_the_search_before_any_trial(tmp_path, capsys, space, message):
    path = tmp_path / "space.toml"
    path.write_text(space, encoding="utf-8")
    assert tune(tmp_path / "run", path, "--trials", "1") == 2
    err = capsys.readouterr().err
    assert f"loopynet tune: error: {message}" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_drawn_combination_that_does_not_work_fails_its_trial_only(tmp_path):
    """stateful with bidirectional is a ConfigError: that trial is FAIL, the others run."""
    space = tmp_path / "space.toml"
    space.write_text('maxlen = 20\nunits = 4\nepochs = 1\nhead = "last"\nchunk_len = 10\nstateful = true\n'
                     "[bidirectional]\nchoices = [true, false]\n", encoding="utf-8")
    out = tmp_path / "run"
    assert tune(out, space, "--sampler", "random", "--trials", "4", "--pruner", "none") == 0
    trials = trials_of(out)
    states = {t.params["bidirectional"]: t.state for t in trials}
    assert states == {True: TrialState.FAIL, False: TrialState.COMPLETE}, [(t.params, t.state) for t in trials]
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    assert failed.user_attrs["config"]["model"]["bidirectional"] is True


def test_reproduce_command_expresses_every_train_flag_including_on_off_switches(tmp_path, space_file):
    settings = TuneSettings(str(DATA), str(VECTORS), tmp_path, load_space(space_file), limit=200)
    config = {"data": {"strip_html": False, "vector_norm": "none"},
              "model": {"bidirectional": True, "units": 8, "maxlen": 40}, "train": {"rho": 0.8, "epsilon": 1e-6, "lr_decay": 0.1}}
    command = reproduce_command(settings, config)
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert (args.strip_html, args.vector_norm, args.maxlen, args.bidirectional, args.units) == (False, "none", 40, True, 8)
    assert (args.rho, args.epsilon, args.lr_decay) == (0.8, 1e-6, 0.1)


def test_importances_are_left_out_with_a_note_when_all_values_are_equal(tmp_path):
    """fANOVA fails on zero variance (two trials with the same val_accuracy): a note, not a crash."""
    from optuna.distributions import IntDistribution

    from loopynet.tune.search import write_plots

    study = optuna.create_study(direction="maximize")
    for units in (4, 8):
        study.add_trial(optuna.trial.create_trial(params={"units": units}, value=0.5,
                                                  distributions={"units": IntDistribution(4, 12)}))
    written, notes = write_plots(study, tmp_path)
    assert written == ["optimization_history.png"] and (tmp_path / written[0]).is_file()
    assert notes == ["no param_importances.png: it needs >= 2 completed trials whose parameters and values vary"]


def test_out_with_other_files_is_refused_and_left_alone(tmp_path, space_file, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "best.json").write_text("my own notes")
    assert tune(out, space_file, "--trials", "1") == 2
    err = capsys.readouterr().err
    assert "is a folder with other files and no search.json: refusing" in err and "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["best.json"] and (out / "best.json").read_text() == "my own notes"


def test_resuming_with_another_space_or_limit_is_refused(tmp_path, space_file, capsys):
    out = tmp_path / "run"
    one = tmp_path / "one.toml"
    one.write_text("maxlen = 20\nepochs = 1\n[units]\nlow = 4\nhigh = 6\n", encoding="utf-8")
    assert tune(out, one, "--trials", "1") == 0
    assert json.loads((out / "search.json").read_text())["space"]["params"] == {"units": {"low": 4, "high": 6}}
    other = tmp_path / "other.toml"
    other.write_text("maxlen = 30\nepochs = 1\n[units]\nlow = 4\nhigh = 6\n", encoding="utf-8")
    capsys.readouterr()
    assert tune(out, other, "--trials", "2") == 2
    assert "was run with other settings (space.fixed.maxlen: earlier 20, now 30)" in capsys.readouterr().err
    assert tune(out, one, "--trials", "2", "--seed", "3") == 2
    assert "(seed: earlier 0, now 3)" in capsys.readouterr().err
    assert len(trials_of(out)) == 1  # nothing was added


def test_a_vectors_file_replaced_at_the_same_path_is_another_search(tmp_path, space_file, capsys):
    import shutil
    vectors = tmp_path / "vectors.bin.gz"
    shutil.copy(VECTORS, vectors)
    out = tmp_path / "run"
    assert tune(out, space_file, "--trials", "1", vectors=vectors) == 0
    recorded = json.loads((out / "search.json").read_text())["vectors_sha256"]
    assert len(recorded) == 64
    vectors.write_bytes(vectors.read_bytes() + b"\n")  # a different file under the same name
    capsys.readouterr()
    assert tune(out, space_file, "--trials", "2", vectors=vectors) == 2
    assert f"vectors_sha256: earlier '{recorded}'" in capsys.readouterr().err


@pytest.mark.parametrize("storage", ["bogus://x", "not a url", "sqlite:////nonexistent/dir/x.db"])
def test_bad_storage_url_is_one_line_and_leaves_no_folder(tmp_path, space_file, storage, capsys):
    out = tmp_path / "run"
    assert tune(out, space_file, "--trials", "1", "--storage", storage) == 2
    err = capsys.readouterr().err
    assert "loopynet tune: error: cannot open the study storage" in err and "Traceback" not in err
    assert not out.exists()


def test_timeout_must_be_positive(tmp_path, space_file, capsys):
    assert tune(tmp_path / "run", space_file, "--timeout", "-1") == 2
    assert "timeout must be > 0 seconds" in capsys.readouterr().err
