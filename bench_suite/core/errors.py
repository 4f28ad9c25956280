"""The one exception type users see, and the helpers that make its message useful."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchSuiteError(Exception):
    """An error a user can fix: its message is one sentence saying what, where and what to do.

    The CLI prints the message alone (no traceback unless ``--debug``) and exits non-zero.
    """


class PluginContractError(BenchSuiteError):
    """A plugin returned something that breaks its contract (wrong shape, NaN, ...).

    Raised inside a run cell: the cell is stored as failed with this message, the others go on.
    """


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """``" — did you mean 'mt'?"`` when a close choice exists, else an empty string."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" — did you mean '{close[0]}'?" if close else ""


def unknown_name_message(kind: str, value: str, choices: Iterable[str]) -> str:
    """``unknown neuron 'mtt' — did you mean 'mt'? available: if, ml, mt, rs``."""
    names = sorted(choices)
    hint = did_you_mean(value, names)
    available = ", ".join(names) if names else "none"
    return f"unknown {kind} '{value}'{hint} available: {available}"
