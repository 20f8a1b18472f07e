"""The search space of `loopynet tune`: a TOML file that names training options with ranges or choices.

    [units]               # int range (the option's type decides int or float)
    low = 20
    high = 120
    step = 10             # optional
    [lr]                  # float range on a log scale
    low = 1e-4
    high = 1e-2
    log = true
    [batch_size]          # a choice (ints, floats, strings or booleans)
    choices = [16, 32, 64]
    epochs = 2            # a plain value fixes the option for every trial

Valid names are the fields of DataConfig, ModelConfig and TrainConfig except those a search must not
vary (`EXCLUDED`), so fields added to the configs later become tunable without changes here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from loopynet.config import COMMAND_FIELDS, field_type
from loopynet.errors import UserError

CONFIGS = tuple(cls for cls, _ in COMMAND_FIELDS["train"])
"""DataConfig, ModelConfig, TrainConfig: the configs of `loopynet train`."""
EXCLUDED = frozenset({"embedding_dims", "seed", "limit", "encoding_errors", "vectors_errors", "vectors_member"})
"""Fields that are not tunable: set by the vectors, by the search itself (`--seed`, `--limit`), or how
input files are read (`--encoding-errors`, `--vectors-errors`, `--vectors-member`)."""
DEFAULT_SPACE = Path(__file__).with_name("default_space.toml")
RANGE_KEYS = frozenset({"low", "high", "step", "log"})
VALUE_TYPES = (bool, int, float, str)


class SpaceError(UserError, ValueError):
    """A search space that names an unknown option or has a malformed entry (the message names it)."""


def tunable_options() -> dict[str, type]:
    """Option name -> its type (bool, int, float or str): the options of `loopynet train`
    (loopynet.config.COMMAND_FIELDS) except EXCLUDED, so a tuned value always has a flag that reproduces it.

    An optional field (`int | None`) has the type of its value: TOML cannot write None.
    """
    return {name: field_type(cls, name) for cls, names in COMMAND_FIELDS["train"] for name in names
            if name not in EXCLUDED}


@dataclass(frozen=True)
class Param:
    """One searched option: a range (`low`..`high`, inclusive, with `step` or `log`) or `choices`."""

    name: str
    kind: type | None
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    log: bool = False
    choices: tuple | None = None

    def suggest(self, trial):
        """This option's value for an `optuna.Trial` (suggest_categorical, suggest_int or suggest_float)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind is int:
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class Space:
    """Searched options (`params`) and options fixed for every trial (`fixed`)."""

    params: dict[str, Param]
    fixed: dict = field(default_factory=dict)

    def suggest(self, trial) -> dict:
        """Option name -> value for one trial: the fixed values plus one suggestion per param."""
        return self.fixed | {name: param.suggest(trial) for name, param in self.params.items()}


def load_space(path: str | Path | None = None) -> Space:
    """Read and validate a TOML search space (None: the shipped default, `default_space.toml`).

    Raises:
        OSError: the file cannot be read.
        SpaceError: not UTF-8, not TOML, or an entry is unknown or malformed (see `parse_space`).
    """
    path = Path(path or DEFAULT_SPACE)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpaceError(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise SpaceError(f"{path}: not valid UTF-8 at byte {err.start} ({err.reason})") from None
    return parse_space(table, str(path))


def parse_space(table: dict, source: str = "search space") -> Space:
    """Validate a parsed TOML table: `[name]` tables become params, plain `name = value` lines fixed values.

    Raises:
        SpaceError: an unknown option (the message lists the valid ones), a malformed entry (low > high,
            low or high missing, log with low <= 0, log with step, step <= 0, empty choices, a value of
            the wrong type, unknown entry keys), or a space that searches nothing.
    """
    options = tunable_options()
    params, fixed = {}, {}
    for name, entry in table.items():
        if name not in options:
            raise SpaceError(f"{source}: unknown option {name!r}; valid options: {', '.join(sorted(options))}")
        if isinstance(entry, dict):
            params[name] = _parse_param(name, entry, options[name], source)
        else:
            fixed[name] = _check_value(entry, options[name], f"{source}: {name}")
    if not params:
        raise SpaceError(f"{source}: searches nothing; add at least one [option] table with low/high or choices")
    return Space(params, fixed)


def _parse_param(name: str, entry: dict, kind: type | None, source: str) -> Param:
    where = f"{source}: [{name}]"
    unknown = sorted(set(entry) - RANGE_KEYS - {"choices"})
    if unknown:
        raise SpaceError(f"{where}: unknown keys {unknown}; use low/high (+ step or log) or choices")
    if "choices" in entry:
        return _parse_choices(name, entry, kind, where)
    missing = sorted({"low", "high"} - set(entry))
    if missing:
        raise SpaceError(f"{where}: missing {' and '.join(missing)}; give low and high, or choices")
    if kind not in (int, float):
        raise SpaceError(f"{where}: a {getattr(kind, '__name__', 'non-numeric')} option takes choices, not a range")
    low, high = (_check_number(entry[key], kind, f"{where} {key}") for key in ("low", "high"))
    step = entry.get("step")
    log = entry.get("log", False)
    if low > high:
        raise SpaceError(f"{where}: low {low} > high {high}")
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log must be true or false, not {log!r}")
    if log and low <= 0:
        raise SpaceError(f"{where}: log = true needs low > 0, not {low}")
    if step is not None:
        step = _check_number(step, kind, f"{where} step")
        if step <= 0 or log:
            raise SpaceError(f"{where}: step must be > 0 and cannot be combined with log = true")
    return Param(name, kind, low, high, step, log)


def _parse_choices(name: str, entry: dict, kind: type | None, where: str) -> Param:
    extra = sorted(set(entry) - {"choices"})
    choices = entry["choices"]
    if extra:
        raise SpaceError(f"{where}: choices cannot be combined with {extra}")
    if not isinstance(choices, list) or not choices:
        raise SpaceError(f"{where}: choices must be a non-empty list, not {choices!r}")
    return Param(name, kind, choices=tuple(_check_value(c, kind, f"{where} choice") for c in choices))


def _check_number(value, kind: type, what: str):
    """`value` as `kind` (an int is a valid float). Raises SpaceError for bools and other types."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise SpaceError(f"{what} must be {'an int' if kind is int else 'a number'}, not {value!r}")
    return kind(value)


def _check_value(value, kind: type | None, what: str):
    """A fixed value or choice checked against the option's type. Raises SpaceError on a mismatch."""
    if kind in (int, float):
        return _check_number(value, kind, what)
    if not isinstance(value, kind or VALUE_TYPES):
        raise SpaceError(f"{what} must be {'a ' + kind.__name__ if kind else 'a bool, int, float or string'}, "
                         f"not {value!r}")
    return value
