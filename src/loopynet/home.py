"""Where loopynet keeps downloads and caches."""

from __future__ import annotations

import os
from pathlib import Path


def loopynet_home() -> Path:
    """The cache root: `$LOOPYNET_HOME` when set, else `~/.cache/loopynet`."""
    return Path(os.environ.get("LOOPYNET_HOME") or Path.home() / ".cache" / "loopynet")


def cache_dir() -> Path:
    """Folder for derived data (tokenised corpora, compiled kernels): `$LOOPYNET_HOME/cache`."""
    return loopynet_home() / "cache"
