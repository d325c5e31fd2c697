"""Progress bars on stderr for long steps (training, retraining, gradient passes).

One live display at a time: nested steps add rows to the display that is already running.
Set ``ERASEKIT_PROGRESS=0`` (or call :func:`set_enabled`) to silence them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_enabled = os.environ.get("ERASEKIT_PROGRESS", "1") != "0"
_live: ContextVar[Progress | None] = ContextVar("erasekit_progress", default=None)


def set_enabled(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def _new_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


@contextmanager
def session() -> Iterator[None]:
    """Keep one display alive across several steps (e.g. a whole CLI command)."""
    if not _enabled or _live.get() is not None:
        yield
        return
    progress = _new_progress()
    token = _live.set(progress)
    try:
        with progress:
            yield
    finally:
        _live.reset(token)


def _ignore(n: int = 1) -> None:
    pass


@contextmanager
def step(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress row; yields ``advance(n)``. Removed when the step ends."""
    if not _enabled:
        yield _ignore
        return
    with session():
        progress = _live.get()
        if progress is None:  # disabled while the session started
            yield _ignore
            return
        live: Progress = progress
        task = live.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            live.advance(task, n)

        try:
            yield advance
        finally:
            live.remove_task(task)
