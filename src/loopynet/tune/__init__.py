"""Hyperparameter search for the book's classifier (NLP in Action 8.4) with Optuna.

`loopynet.tune.space` reads the TOML search space (no Optuna needed); `loopynet.tune.search` runs the
study (needs the `tune` extra: `pip install 'loopynet[tune]'`).
"""

from loopynet.tune.space import DEFAULT_SPACE, Param, Space, SpaceError, load_space, parse_space, tunable_options

__all__ = ["DEFAULT_SPACE", "Param", "Space", "SpaceError", "load_space", "parse_space", "tunable_options"]
