"""Rich progress bars for the runner's stages (the runner only sees ``stage(description, total)``)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichProgress:
    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("left"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.console = console
        self._cells_task = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        self.console = self.progress.console
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def stop(self) -> None:
        self.progress.stop()

    def stage(self, description: str, total: int) -> Callable[[int], None]:
        if description == "cells":
            task = self.progress.add_task("cells", total=total)
            return lambda advance=1: self.progress.advance(task, advance)
        task = self.progress.add_task(f"  {description}", total=max(total, 1))

        def advance(amount: int = 1) -> None:
            live = {t.id: t for t in self.progress.tasks}
            if task in live:
                self.progress.advance(task, amount)
                if live[task].finished:
                    self.progress.remove_task(task)

        return advance
