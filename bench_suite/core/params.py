"""Plugin parameters: parse ``KIND=NAME(key=value, ...)``, coerce values to the plugin's declared types.

A plugin declares its parameters as a frozen dataclass ``Params`` (field types: bool, int, float, str,
``tuple[float, ...]``, ``typing.Literal``); ``__post_init__`` may raise ``ValueError`` to reject a value.
The validated values are what a run stores, so a stored run says exactly which variant ran.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from typing import Any

from bench_suite.core.errors import BenchSuiteError, did_you_mean

_CHOICE_RE = re.compile(r"^\s*([a-z_]+)\s*=\s*([A-Za-z0-9_.\-]+)\s*(?:\((.*)\))?\s*$", re.S)


@dataclasses.dataclass(frozen=True)
class PluginChoice:
    """One ``--plugin`` option: a kind, a registry name and the raw parameter strings."""

    kind: str
    name: str
    params: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        if not self.params:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}({inner})"


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets, so ``a=[1,2], b=3`` gives two items."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_plugin_option(text: str) -> PluginChoice:
    """``neuron=mt(thresholds=[2,1,0.5,0.25])`` → PluginChoice('neuron', 'mt', (('thresholds', '[2,1,0.5,0.25]'),))."""
    match = _CHOICE_RE.match(text)
    if not match:
        raise BenchSuiteError(
            f"--plugin '{text}' is not of the form KIND=NAME or KIND=NAME(key=value, ...), "
            "e.g. --plugin neuron=mt or --plugin 'norm=cw(percentile=99.9)'"
        )
    kind, name, inner = match.groups()
    params = []
    for item in split_top_level(inner or ""):
        if "=" not in item:
            raise BenchSuiteError(
                f"--plugin '{text}': parameter '{item}' has no value; write it as key=value"
            )
        key, value = item.split("=", 1)
        params.append((key.strip(), value.strip()))
    return PluginChoice(kind, name, tuple(params))


def _parse_scalar(raw: str, target: type, where: str) -> Any:
    if target is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise BenchSuiteError(f"{where}: '{raw}' is not a boolean; use true or false")
    try:
        return target(raw)
    except ValueError:
        raise BenchSuiteError(f"{where}: '{raw}' is not a valid {target.__name__}") from None


def coerce(raw: Any, annotation: Any, where: str) -> Any:
    """Turn a CLI string (or an already-typed value from a stored run) into ``annotation``'s type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        value = raw if not isinstance(raw, str) else raw.strip()
        if value not in choices:
            names = [str(c) for c in choices]
            raise BenchSuiteError(
                f"{where}: '{raw}' is not allowed{did_you_mean(str(raw), names)} choices: {', '.join(names)}"
            )
        return value
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        errors = []
        for option in typing.get_args(annotation):
            if option is type(None):
                if raw in (None, "none", "None"):
                    return None
                continue
            try:
                return coerce(raw, option, where)
            except BenchSuiteError as exc:
                errors.append(str(exc))
        raise BenchSuiteError(errors[0] if errors else f"{where}: '{raw}' is not valid")
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        if isinstance(raw, str):
            text = raw.strip()
            if text.replace(" ", "") == "[]":
                return ()  # an explicit empty list (e.g. a default that means "none"), as `list` prints it
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            items = [s for s in split_top_level(text) if s]
        else:
            items = list(raw)
        if not items:
            raise BenchSuiteError(f"{where}: give at least one value, e.g. [2,1,0.5]")
        return tuple(coerce(item, item_type, where) for item in items)
    if annotation in (int, float, str, bool):
        if isinstance(raw, str):
            return _parse_scalar(raw, annotation, where)
        if annotation is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, annotation):
            return raw
        raise BenchSuiteError(f"{where}: {raw!r} is not a valid {annotation.__name__}")
    return raw


def build_params(params_cls: type | None, raw: dict[str, Any], owner: str) -> Any:
    """Validate ``raw`` against a plugin's ``Params`` dataclass; ``owner`` is e.g. "neuron 'mt'"."""
    if params_cls is None:
        if raw:
            raise BenchSuiteError(f"{owner} takes no parameters, but got: {', '.join(raw)}")
        return None
    hints = typing.get_type_hints(params_cls)
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise BenchSuiteError(
                f"{owner} has no parameter '{key}'{did_you_mean(key, fields)} "
                f"parameters: {', '.join(fields) or 'none'}"
            )
        values[key] = coerce(value, hints[key], f"{owner} parameter '{key}'")
    try:
        return params_cls(**values)
    except (ValueError, TypeError) as exc:
        raise BenchSuiteError(f"{owner}: {exc}") from None


def params_to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready dict of a Params instance (tuples become lists)."""
    if params is None:
        return {}
    return json.loads(json.dumps(dataclasses.asdict(params)))


def cli_value(value: Any) -> str:
    """A parameter value written as ``--plugin`` takes it: ``[2.0,1.0]``, ``true``, ``none``, ``subtract``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(cli_value(item) for item in value) + "]"
    return str(value)


def describe_params(params_cls: type | None) -> str:
    """``thresholds=[2.0,1.0,0.5,0.25], reset=subtract (subtract|zero)`` for ``list``: each default in
    the syntax ``--plugin KIND=NAME(key=value, ...)`` accepts, with the allowed values of a choice."""
    if params_cls is None:
        return ""
    hints = typing.get_type_hints(params_cls)
    parts = []
    for field in dataclasses.fields(params_cls):
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        text = f"{field.name}={cli_value(default)}" if default is not dataclasses.MISSING else f"{field.name}=…"
        hint = hints.get(field.name)
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if typing.get_origin(hint) is not typing.Literal and len(options) == 1:
            hint = options[0]  # Optional[Literal[...]]: the choices, "none" being the default
        if typing.get_origin(hint) is typing.Literal:
            text += " (" + "|".join(cli_value(c) for c in typing.get_args(hint)) + ")"
        parts.append(text)
    return ", ".join(parts)


def parse_label(label: str) -> tuple[str, dict[str, str]] | None:
    """``mt(thresholds=[2,1])`` → ``("mt", {"thresholds": "[2,1]"})``; None for "-" or unparsable text."""
    label = str(label).strip()
    if not label or label == "-":
        return None
    if "(" in label and label.endswith(")"):
        name, inner = label.split("(", 1)
        params = {}
        for item in split_top_level(inner[:-1]):
            if "=" not in item:
                return None
            key, value = item.split("=", 1)
            params[key.strip()] = value.replace(" ", "")
        return name.strip(), params
    return label, {}


def label_matches(selector: str, label: Any) -> bool:
    """Does ``label`` (a tidy value such as ``three-stage(loss=bce,epochs=1)``) match ``selector``
    (``three-stage(loss=bce)``)? Same name, and the selector's parameters are among the label's. "-"
    matches "-" only."""
    selector, label = str(selector).strip(), str(label).strip()
    if selector == "-" or label == "-":
        return selector == label
    wanted, have = parse_label(selector), parse_label(label)
    if wanted is None or have is None:
        return selector == label
    if wanted[0] != have[0]:
        return False
    return all(have[1].get(key) == value for key, value in wanted[1].items())
