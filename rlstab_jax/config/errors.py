"""The one error type users see for bad input, with a close-match helper."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A user-facing configuration or input error (printed as one line, exit code 2)."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or ``""``."""
    cands = list(candidates)
    match = difflib.get_close_matches(name, cands, n=1, cutoff=0.5)
    if not match:
        # Also try matching on the last dotted component (``train.seedz`` -> ``train.seeds``).
        leaf = name.rsplit(".", 1)[-1]
        by_leaf = {c.rsplit(".", 1)[-1]: c for c in cands}
        leaf_match = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.6)
        match = [by_leaf[leaf_match[0]]] if leaf_match else []
    return f" (did you mean '{match[0]}'?)" if match else ""
