"""What a dataset's ``check`` returns: counts, shapes, label values and every problem found."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from bench_suite.core.errors import BenchSuiteError


def shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(int(s)) for s in shape)


@dataclasses.dataclass
class CheckReport:
    """What ``check`` found: counts, shapes, label values and every problem (empty when all is well)."""

    dataset: str
    folder: str | None = None
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    shapes: dict[str, dict[tuple[int, ...], int]] = dataclasses.field(default_factory=dict)  # group → shape → n
    label_values: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # group → sorted values
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # facts worth knowing that are not errors

    @property
    def ok(self) -> bool:
        return not self.problems and self.folder is not None

    def add_shape(self, group: str, shape: Sequence[int]) -> None:
        key = tuple(int(s) for s in shape)
        per_group = self.shapes.setdefault(group, {})
        per_group[key] = per_group.get(key, 0) + 1

    def add_labels(self, group: str, values: Iterable[int]) -> None:
        merged = set(self.label_values.get(group, [])) | {int(v) for v in values}
        self.label_values[group] = sorted(merged)

    def attempt(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)``, or None with its BenchSuiteError recorded as a problem."""
        try:
            return function(*args)
        except BenchSuiteError as error:
            self.problems.append(str(error))
            return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (shape tuples become "35×51×35" keys)."""
        return {
            "dataset": self.dataset, "folder": self.folder, "ok": self.ok, "counts": dict(self.counts),
            "shapes": {g: {shape_text(s): n for s, n in d.items()} for g, d in self.shapes.items()},
            "label_values": dict(self.label_values), "problems": list(self.problems), "notes": list(self.notes),
        }

    def lines(self, max_problems: int = 20) -> list[str]:
        out = [f"{self.dataset}: {'OK' if self.ok else 'PROBLEMS FOUND'} ({self.folder or 'no folder found'})"]
        if self.counts:
            out.append("counts: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        for group, shapes in self.shapes.items():
            out.append(f"shapes of {group}: {_summarize_shapes(shapes)}")
        for group, values in self.label_values.items():
            shown = ", ".join(map(str, values[:40])) + (", ..." if len(values) > 40 else "")
            out.append(f"label values of {group}: {{{shown}}}")
        out.extend(f"note: {note}" for note in self.notes)
        if self.problems:
            out.append(f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}:")
            out.extend(f"  - {p}" for p in self.problems[:max_problems])
            if len(self.problems) > max_problems:
                out.append(f"  ... and {len(self.problems) - max_problems} more")
        return out


def _summarize_shapes(shapes: dict[tuple[int, ...], int]) -> str:
    if len(shapes) <= 3:
        return ", ".join(f"{shape_text(s)} ({n})" for s, n in sorted(shapes.items()))
    arrays = np.array(list(shapes))
    total = sum(shapes.values())
    low, high = shape_text(arrays.min(0)), shape_text(arrays.max(0))
    return f"{len(shapes)} different, per axis from {low} to {high} ({total} files)"
