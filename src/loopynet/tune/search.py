"""Run a hyperparameter search (random or TPE) with Optuna on an RDB storage, resumable and parallel.

The objective is the validation accuracy, on the chapter's 80/20 split of the training data (never
the test split), of the weights `loopynet train` with the same settings would save: the last epoch's
(or the restored best epoch's, with early stopping). All trials of a study share `seed` and
`limit`, so they see the same documents and the same validation set.

A study lives in a database (default `sqlite:///OUT/study.db`; any SQLAlchemy URL, e.g. PostgreSQL).
Running the same search again resumes it: finished trials (COMPLETE or PRUNED) count toward `trials`.
Workers send heartbeats; a trial whose worker died is marked FAIL once its heartbeat is older than
twice `heartbeat` seconds, and is retried once with the same parameters. A worker that was only paused
(stopped, swapped out) past that grace comes back to a FAIL trial: its late result is logged and
dropped, and the worker goes on with the next trial.

Locks: SQLite lets one writer in at a time; the others wait up to its busy timeout, heartbeat / 2
seconds (at most 60), so a heartbeat delayed by a lock still lands within the grace of 2 x heartbeat
(a trial is not failed for waiting). A lock held longer ends the search with one line and the hint (fewer
--workers, or PostgreSQL); the trial in flight is left RUNNING, not FAIL (a resumed search retries it).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import multiprocessing
import os
import shlex
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy
import torch
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from loopynet.config import (
    COMMAND_FIELDS,
    ConfigError,
    TuneSettings,
    argv_words,
    check_data,
    check_model,
    check_train,
    check_tune,
    from_dict,
    moved_maxlen,
    to_dict,
)
from loopynet.device import resolve_device
from loopynet.errors import UserError
from loopynet.io.artifact import sha256_file, write_json
from loopynet.io.atomic import atomic_file
from loopynet.tasks.classification.api import Classifier
from loopynet.train.checkpoint import flatten
from loopynet.train.loop import TrainingError, best_record
from loopynet.tune.space import CONFIGS, SpaceError, tunable_options

SEARCH_FILE = "search.json"
"""In a results folder: what every trial of the study shares (data, vectors, limit, seed, space)."""
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
"""Trial states that count toward the requested number of trials."""
OBJECTIVE = "val_accuracy of the trained weights (last epoch, or restored best) on the 80/20 split of the training data"


LOCKED_EXIT = 3
"""Exit code of a worker process stopped by a locked storage (the parent reports it in one line)."""


class TuneError(UserError, RuntimeError):
    """A search that cannot finish: a worker process failed, or no trial completed."""


class StorageLockedError(TuneError):
    """The study storage stayed locked longer than its busy timeout."""


class _Locked(BaseException):
    """A lock error inside a trial, raised past Optuna's `except Exception` so that Optuna neither marks
    the trial FAIL nor logs a traceback; run_worker turns it into StorageLockedError."""


def run_search(settings: TuneSettings, log: Callable[[str], None] = print) -> dict:
    """Run or resume the search, write the results folder, and return the content of best.json.

    Raises:
        ValueError: bad settings.
        TuneError: a worker process failed, or no trial completed.
        CorpusError, VectorsError: unreadable data or vectors (with one worker; else TuneError).
    """
    _check_settings(settings)
    try:
        return _search(settings, log)
    except Exception as err:
        if is_lock_error(err):
            raise locked_error(settings) from None
        raise


def _search(settings: TuneSettings, log: Callable[[str], None]) -> dict:
    _check_out(Path(settings.out))
    created = not Path(settings.out).exists()
    Path(settings.out).mkdir(parents=True, exist_ok=True)
    _set_verbosity(settings.quiet)
    try:
        study = open_study(settings)
    except sqlalchemy.exc.SQLAlchemyError as err:
        if created:
            shutil.rmtree(settings.out, ignore_errors=True)
        raise TuneError(f"cannot open the study storage {redact(settings.url)}: "
                        f"{' '.join(str(err).split())[:300]}") from None
    _check_same_search(study, settings)
    finished = sum(t.state in COUNTED for t in study.trials)
    remaining = max(0, settings.trials - finished)
    log(f"study {settings.study!r} in {redact(settings.url)}: {finished} finished trial(s), "
        f"{remaining} to run on {settings.workers} worker(s)")
    _run_workers(settings, shares(remaining, settings.workers), len(study.trials))
    return write_results(study, settings, log)


def _check_settings(settings: TuneSettings) -> None:
    """Raises ConfigError naming the first bad setting, DeviceError an unavailable device, SpaceError the first
    value of the space that
    cannot be trained."""
    check_tune(settings)
    resolve_device(settings.device)
    _check_space_values(settings)


def _check_out(out: Path) -> None:
    """`--out` must be new, empty, or the results folder of an earlier search (it holds SEARCH_FILE, or
    study.db from loopynet before 0.1.0's stop 10); anything else is refused, so no user file is replaced.

    Raises:
        TuneError: `out` is a file or a folder with other contents.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise TuneError(f"--out {out} exists and is not a folder")
    if any(out.iterdir()) and not ((out / SEARCH_FILE).is_file() or (out / "study.db").is_file()):
        raise TuneError(f"--out {out} is a folder with other files and no {SEARCH_FILE}: refusing to write the "
                        "search results into it; name a new folder")


def search_identity(settings: TuneSettings) -> dict:
    """What every trial of one study must share: data, vectors (paths and, for files, their SHA-256: a
    file replaced at the same path is another search), limit, seed, encoding_errors and the space."""
    params = {name: {k: v for k, v in (("low", p.low), ("high", p.high), ("step", p.step), ("log", p.log),
                                       ("choices", list(p.choices) if p.choices is not None else None))
                     if v not in (None, False)}
              for name, p in settings.space.params.items()}
    return {"data": str(Path(settings.data).resolve()), "vectors": str(Path(settings.vectors).resolve()),
            "data_sha256": _file_sha256(settings.data), "vectors_sha256": _file_sha256(settings.vectors),
            "limit": settings.limit, "seed": settings.seed, "encoding_errors": settings.encoding_errors,
            "space": {"params": params, "fixed": settings.space.fixed}}


def _check_same_search(study: optuna.Study, settings: TuneSettings) -> None:
    """Record the search's identity in a new study (and in OUT/SEARCH_FILE); refuse to add trials of
    another search to an existing one: their results would not be comparable.

    Raises:
        TuneError: names what differs from the study's earlier runs.
    """
    identity = json.loads(json.dumps(search_identity(settings)))  # as stored: tuples become lists
    earlier = study.user_attrs.get("search")
    if earlier is None:  # a new study, or one from before identities were stored
        study.set_user_attr("search", identity)
    elif earlier != identity:
        old, new = flatten(earlier), flatten(identity)
        differs = [f"{k}: earlier {old.get(k)!r}, now {new.get(k)!r}" for k in sorted(old.keys() | new.keys())
                   if old.get(k) != new.get(k)]
        raise TuneError(f"study {settings.study!r} in {redact(settings.url)} was run with other settings ("
                        + "; ".join(differs) + "); resume it with the same settings, or use a new --out / --study")
    write_json(Path(settings.out) / SEARCH_FILE, identity)


def _file_sha256(path) -> str | None:
    """SHA-256 of a file, None for a folder (a folder of reviews is named by its path only)."""
    return sha256_file(Path(path)) if Path(path).is_file() else None


def _check_space_values(settings: TuneSettings) -> None:
    """Before any trial: every bound and choice of the space, with the fixed values, must be a value
    training accepts on its own (loopynet.config.check_data / check_train, check_model
    without the stateful/chunk_len combinations, which are checked per trial).

    Raises:
        SpaceError: names the option, the value and what is wrong with it.
    """
    for name, param in settings.space.params.items():
        for value in param.choices if param.choices is not None else (param.low, param.high):
            data, model, train = build_configs(settings.space.fixed | {name: value}, settings)
            try:
                check_data(data)
                check_train(train)
                check_model(dataclasses.replace(model, stateful=False, chunk_len=None))
            except ConfigError as err:
                raise SpaceError(f"search space [{name}]: value {value!r} cannot be trained: {err}") from None


def _set_verbosity(quiet: bool) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING if quiet else optuna.logging.INFO)


def shares(remaining: int, workers: int) -> list[int]:
    """Split `remaining` trials over `workers` as evenly as possible (the shares sum to `remaining`)."""
    return [remaining // workers + (i < remaining % workers) for i in range(workers)]


def busy_timeout(heartbeat: int) -> float:
    """Seconds SQLite waits for a locked database: heartbeat / 2, at most 60. A heartbeat that waits this
    long lands 1.5 x heartbeat after the one before, within the grace of 2 x heartbeat (SQLite stores
    whole seconds; the grace is checked as "older than", so the margin is at least 0.5 s)."""
    return min(60.0, heartbeat / 2)


def open_storage(url: str, heartbeat: int) -> RDBStorage:
    """An RDB storage with heartbeats every `heartbeat` s, a grace period of 2 x `heartbeat` s, and one
    retry of each trial whose worker stopped beating. SQLite waits `busy_timeout(heartbeat)` s for a
    locked database."""
    engine_kwargs = ({"connect_args": {"timeout": busy_timeout(heartbeat)}} if url.startswith("sqlite")
                     else {"pool_pre_ping": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats, retry callback
        return _Storage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))


class _Storage(RDBStorage):
    """RDBStorage whose heartbeat thread survives a locked database: a beat that cannot be written is
    skipped and the next one comes `heartbeat` s later (Optuna's thread would die with a traceback and
    never beat again). A lock that outlasts the busy timeout also stops the trial's own next write,
    which ends the search with the lock's one-line error."""

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as err:
            if not is_lock_error(err):
                raise


def is_lock_error(err: BaseException | None) -> bool:
    """Whether `err` or an exception it was raised from is SQLAlchemy's OperationalError "... is locked"
    (Optuna wraps it in StorageInternalError)."""
    return any(isinstance(e, sqlalchemy.exc.OperationalError) and "locked" in str(e) for e in _chain(err))


def _chain(err: BaseException | None):
    """`err` and the exceptions it was raised from or while handling, innermost last."""
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def locked_error(settings: TuneSettings) -> StorageLockedError:
    """The one-line error of a storage locked longer than its busy timeout, with the hint."""
    wait = f" longer than its busy timeout of {busy_timeout(settings.heartbeat):g} s" if settings.url.startswith(
        "sqlite") else ""
    return StorageLockedError(f"the study storage {redact(settings.url)} stayed locked{wait} (database is locked); "
                              "run fewer --workers, or use PostgreSQL (--storage postgresql://...); "
                              "run the same command again to resume")


def _warn(message: str) -> None:
    print(f"loopynet tune: warning: {message}", file=sys.stderr, flush=True)


def open_study(settings: TuneSettings, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Create the study (direction: maximize) or load it when it exists."""
    return optuna.create_study(storage=open_storage(settings.url, settings.heartbeat), sampler=sampler,
                               pruner=make_pruner(settings.pruner), study_name=settings.study,
                               direction="maximize", load_if_exists=True)


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """median: MedianPruner (prunes from the 6th trial on); halving: SuccessiveHalvingPruner; none."""
    return {"median": optuna.pruners.MedianPruner, "halving": optuna.pruners.SuccessiveHalvingPruner,
            "none": optuna.pruners.NopPruner}[name]()


def startup_trials(trials: int) -> int:
    """TPE's random start: a quarter of the budget, 2 to 10 trials (Optuna's default of 10 would make a
    search of 10 trials or fewer purely random)."""
    return max(2, min(10, trials // 4))


def make_sampler(settings: TuneSettings, worker: int, n_existing: int) -> optuna.samplers.BaseSampler:
    """The sampler of one worker, seeded from (seed, worker, trials already in the study): workers differ,
    and a resumed search does not replay the suggestions of the run before."""
    seed = int(np.random.SeedSequence([settings.seed, worker, n_existing]).generate_state(1)[0])
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # constant_liar
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(settings.trials),
                                          constant_liar=settings.workers > 1)


def _run_workers(settings: TuneSettings, worker_shares: list[int], n_existing: int) -> None:
    """Run the shares in this process (one worker) or in spawned processes, one CPU thread share each.

    Raises:
        TuneError: a worker process exited with an error (its traceback is on stderr).
    """
    if settings.workers == 1:
        run_worker(settings, 0, worker_shares[0], n_existing)
        return
    threads = max(1, (os.cpu_count() or 1) // settings.workers)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker_process, args=(settings, i, share, n_existing, threads),
                                 name=f"loopynet-tune-worker-{i}") for i, share in enumerate(worker_shares) if share]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    if any(p.exitcode == LOCKED_EXIT for p in processes):
        raise locked_error(settings)
    failed = [f"{p.name} (exit code {p.exitcode})" for p in processes if p.exitcode]
    if failed:
        raise TuneError(f"worker process(es) failed: {', '.join(failed)}; their errors are printed above")


def _worker_process(settings: TuneSettings, worker: int, n_trials: int, n_existing: int, threads: int) -> None:
    torch.set_num_threads(threads)
    _set_verbosity(settings.quiet)
    try:
        run_worker(settings, worker, n_trials, n_existing)
    except StorageLockedError:
        sys.exit(LOCKED_EXIT)


def run_worker(settings: TuneSettings, worker: int, n_trials: int, n_existing: int) -> None:
    """Run up to `n_trials` trials; stops early when the study has `settings.trials` finished trials or
    after `settings.timeout` seconds. A trial whose loss becomes NaN, or whose drawn settings do not work
    together (ConfigError, e.g. stateful with bidirectional), is recorded as FAIL and the search goes on.
    A late result (the trial was failed meanwhile for a stale heartbeat) is logged and dropped, and does
    not count toward `n_trials`.

    Raises:
        StorageLockedError: the storage stayed locked longer than its busy timeout.
        CorpusError, VectorsError, ValueError: unreadable data or vectors, or settings training rejects.
    """
    try:
        _run_worker(settings, worker, n_trials, n_existing)
    except _Locked:
        raise locked_error(settings) from None
    except Exception as err:
        if is_lock_error(err):
            raise locked_error(settings) from None
        raise


def _run_worker(settings: TuneSettings, worker: int, n_trials: int, n_existing: int) -> None:
    study = open_study(settings, make_sampler(settings, worker, n_existing))
    deadline = None if settings.timeout is None else time.monotonic() + settings.timeout
    while n_trials > 0 and sum(t.state in COUNTED for t in study.get_trials(deepcopy=False)) < settings.trials:
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return
        calls = _Calls(settings, worker)
        try:
            study.optimize(calls, n_trials=n_trials, timeout=timeout, catch=(TrainingError, ConfigError),
                           callbacks=[MaxTrialsCallback(settings.trials, states=COUNTED)])
            return
        except Exception as err:
            if not calls.refused_late(study, err):
                raise
            _warn(f"trial {calls.trial.number} was failed while its worker was paused (no heartbeat for more than "
                  f"{2 * settings.heartbeat} s; a retry is queued): its late result is dropped")
            n_trials -= calls.count - 1


class _Calls:
    """The objective of one `study.optimize`: counts its calls and remembers the last trial, and the
    exception the objective itself raised, so that a late result can be told from other errors."""

    def __init__(self, settings: TuneSettings, worker: int):
        self.settings, self.worker = settings, worker
        self.count, self.trial, self.error = 0, None, None

    def __call__(self, trial: optuna.Trial) -> float | None:
        self.count, self.trial, self.error = self.count + 1, trial, None
        try:
            return objective(trial, self.settings, self.worker)
        except optuna.exceptions.UpdateFinishedTrialError:
            return None  # the trial was failed meanwhile: Optuna refuses to tell it, refused_late drops it
        except Exception as err:
            if is_lock_error(err):
                raise _Locked() from err
            self.error = err
            raise

    def refused_late(self, study: optuna.Study, err: Exception) -> bool:
        """Whether `err`, raised by `study.optimize`, is Optuna refusing to tell the last trial because it
        was already finished (failed for a stale heartbeat: "Cannot tell a FAIL trial"), and not an
        error of the objective itself."""
        refused = any(isinstance(e, ValueError) and str(e).startswith("Cannot tell a") for e in _chain(err))
        if self.trial is None or err is self.error or not refused:
            return False
        number = self.trial.number
        return next(t for t in study.get_trials(deepcopy=False) if t.number == number).state.is_finished()


def objective(trial: optuna.Trial, settings: TuneSettings, worker: int = 0) -> float:
    """Train one suggested configuration; returns the val_accuracy of the trained weights (see `score`).

    Stores in the trial's user_attrs: config (data/model/train dicts), history (per-epoch records),
    seconds (wall time of data loading and training), worker and torch_threads (CPU threads: another
    count changes the order of float sums, so the same settings can end a point of accuracy apart).

    Raises:
        optuna.TrialPruned: the pruner stopped the trial after an epoch.
        TrainingError: the loss became NaN.
        CorpusError, VectorsError, ValueError: unreadable data or vectors, or bad settings.
    """
    configs = build_configs(settings.space.suggest(trial), settings)
    history: list[dict] = []
    trial.set_user_attr("worker", worker)
    trial.set_user_attr("torch_threads", torch.get_num_threads())
    start = time.perf_counter()
    try:
        Classifier.train(settings.data, settings.vectors, *configs, progress=False, log=lambda line: None,
                         on_epoch_end=epoch_reporter(trial, history), device=settings.device)
    finally:
        trial.set_user_attr("seconds", time.perf_counter() - start)
        trial.set_user_attr("config", dict(zip(("data", "model", "train"), map(to_dict, configs))))
    return score(history, trial.user_attrs["config"]["train"])


def score(history: list[dict], train: dict) -> float:
    """val_accuracy (0..1) of the weights training returns: the last epoch's, or with early stopping
    (`patience`) and `restore_best` that of the epoch `fit` restores (the best `monitor`, default val_loss)."""
    if train.get("patience") is not None and train.get("restore_best"):
        return best_record(history, train.get("monitor", "val_loss"))["val_accuracy"]
    return history[-1]["val_accuracy"]


def build_configs(values: dict, settings: TuneSettings) -> tuple:
    """(DataConfig, ModelConfig, TrainConfig) of one trial: `values` plus the search's limit, seed and
    encoding_errors."""
    merged = {"limit": settings.limit, "seed": settings.seed, "encoding_errors": settings.encoding_errors} | values
    return tuple(cls(**{f.name: merged[f.name] for f in dataclasses.fields(cls) if f.name in merged})
                 for cls in CONFIGS)


def epoch_reporter(trial: optuna.Trial, history: list[dict]) -> Callable[[dict], None]:
    """An `on_epoch_end` callback: appends the epoch record to `history` (also stored in the trial) and
    reports its val_accuracy to the pruner at step = epoch.

    The callback raises ValueError when the record has no val_accuracy (val_split 0), and
    optuna.TrialPruned when the pruner stops the trial.
    """
    def report(record: dict) -> None:
        if "val_accuracy" not in record:
            raise ConfigError("a search needs a validation split: val_split must be > 0")
        history.append(record)
        trial.set_user_attr("history", history)
        trial.report(record["val_accuracy"], record["epoch"])
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {record['epoch']} "
                                     f"(val_accuracy {record['val_accuracy']:.4f})")
    return report


def write_results(study: optuna.Study, settings: TuneSettings, log: Callable[[str], None] = print) -> dict:
    """Write trials.csv, the plots and best.json (optionally best-model/) in `settings.out`.

    Returns best.json's content: value, number, params, config, history, torch_threads, command (the
    `loopynet train` line that reproduces the best trial; shell_command adds OMP_NUM_THREADS, which
    makes the result bit-exact), trials (count per state), plots, notes.

    Raises:
        TuneError: no trial completed.
    """
    out = Path(settings.out)
    trials = study.trials
    write_trials_csv(trials, out / "trials.csv")
    plots, notes = write_plots(study, out, settings.seed)
    counts = dict(collections.Counter(t.state.name for t in trials))
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise TuneError(f"no trial completed ({counts or 'no trials'}); see {out / 'trials.csv'}")
    best = study.best_trial
    config = best.user_attrs["config"]
    command = reproduce_command(settings, config)
    threads = best.user_attrs["torch_threads"]
    result = {"study": settings.study, "storage": redact(settings.url), "sampler": settings.sampler,
              "pruner": settings.pruner, "objective": OBJECTIVE, "value": best.value, "number": best.number,
              "params": best.params, "config": config, "history": best.user_attrs.get("history", []),
              "seconds": best.user_attrs.get("seconds"), "torch_threads": threads, "command": command,
              "shell_command": f"OMP_NUM_THREADS={threads} {command}",
              "trials": counts, "plots": plots, "notes": notes}
    if settings.save_best:
        result |= save_best(settings, config, threads, out / "best-model", log)
    write_json(out / "best.json", result)
    return result


def write_trials_csv(trials: list[FrozenTrial], path: Path) -> None:
    """One row per trial: number, state, value, seconds (wall time), then one params_<name> column per param."""
    names = sorted({name for t in trials for name in t.params})
    with atomic_file(path, "w") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "value", "seconds", *(f"params_{n}" for n in names)])
        for t in trials:
            writer.writerow([t.number, t.state.name, "" if t.value is None else t.value, _seconds(t),
                             *(t.params.get(n, "") for n in names)])


def _seconds(trial: FrozenTrial) -> float | str:
    """The trial's wall time in seconds ("" when it never ran to an end)."""
    if "seconds" in trial.user_attrs:
        return trial.user_attrs["seconds"]
    return trial.duration.total_seconds() if trial.duration else ""


def write_plots(study: optuna.Study, out: Path, seed: int = 0) -> tuple[list[str], list[str]]:
    """optimization_history.png, and param_importances.png (fANOVA, seeded with `seed`) when >= 2
    completed trials vary a parameter and differ in value.

    Returns (file names written, notes on plots left out).
    """
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as plots

    written, notes = ["optimization_history.png"], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        _save(plots.plot_optimization_history(study, target_name="val_accuracy"), out / written[0])
        completed = study.get_trials(states=(TrialState.COMPLETE,))
        if _params_vary(completed) and len({t.value for t in completed}) >= 2:  # fANOVA needs varying values
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
            _save(plots.plot_param_importances(study, evaluator=evaluator, target_name="val_accuracy"),
                  out / "param_importances.png")
            written.append("param_importances.png")
        else:
            notes.append("no param_importances.png: it needs >= 2 completed trials whose parameters and "
                         "values vary")
    return written, notes


def _params_vary(completed: list[FrozenTrial]) -> bool:
    names = {name for t in completed for name in t.params}
    return len(completed) >= 2 and any(len({repr(t.params.get(n)) for t in completed}) > 1 for n in names)


def _save(ax, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(ax.figure)


def reproduce_command(settings: TuneSettings, config: dict) -> str:
    """The `loopynet train` line that trains `config` (a trial's data/model/train dicts) on the same slice;
    options at their default are left out. Every tunable option is an option of `loopynet train`
    (both come from loopynet.config.COMMAND_FIELDS), so the line sets every value of the trial."""
    defaults = {f.name: f.default for cls, _ in COMMAND_FIELDS["train"] for f in dataclasses.fields(cls)}
    options = {name: value for section in config.values() for name, value in section.items()
               if name in tunable_options()}
    argv = ["loopynet", "train", "--data", str(settings.data), "--vectors", str(settings.vectors),
            "--out", str(Path(settings.out) / "best-model"), "--seed", str(settings.seed)]
    if settings.limit is not None:
        argv += ["--limit", str(settings.limit)]
    if settings.encoding_errors != "strict":
        argv += ["--encoding-errors", settings.encoding_errors]
    for name, value in options.items():
        if value != defaults[name]:
            argv += argv_words(name, value)
    return shlex.join(argv)


def save_best(settings: TuneSettings, config: dict, threads: int, path: Path, log: Callable[[str], None]) -> dict:
    """Retrain `config` on `threads` CPU threads (the trial's) and save the model folder to `path`;
    returns {best_model, retrained_val_accuracy}."""
    model, data = moved_maxlen(config["model"], config["data"])  # a trial of a study begun before issue 11
    configs = [from_dict(cls, section) for cls, section in zip(CONFIGS, (data, model, config["train"]))]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        clf = Classifier.train(settings.data, settings.vectors, *configs, progress=not settings.quiet, log=log,
                               device=settings.device)
    finally:
        torch.set_num_threads(previous)
    saved = clf.save(path)
    log(f"saved the best configuration, retrained, to {saved}")
    return {"best_model": str(saved), "retrained_val_accuracy": score(clf.history, to_dict(clf.train_config))}


def redact(url: str) -> str:
    """The storage URL with any password masked (a string that is no URL is shown as "<unparsable URL>")."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "<unparsable URL>"
