"""What a long command prints while it works, and where the rest goes.

A command prints one line per phase with its counts (`Progress.line`), and while a phase with a
known amount of work runs, how far it is and about how long it has left (`Progress.steps`): on
a terminal the line is rewritten in place, elsewhere (a pipe, a service's log) a line is printed
every `interval` seconds. The details (Dagster's event logs, `dagster dev`'s output, the
libraries' INFO lines) go to a log file under `$TOBAN_STATE_DIR/logs/` that the command names.
"""

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

# Dagster's own format (dagster._utils.log.default_format_string), so that the log file reads
# like the console output it replaces.
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def duration(seconds: float) -> str:
    """'8 s', '3 min', '1 h 05 min'."""
    seconds = max(round(seconds), 0)
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """Progress lines of one command, on its standard error (standard output keeps the result)."""

    def __init__(
        self, stream: TextIO | None = None, *, interval: float = 10.0, quiet: bool = False
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.interactive = not quiet and self.stream.isatty()
        self.interval = interval
        self._shown = False  # a line being rewritten in place is on the terminal

    def line(self, text: str) -> None:
        """A phase's result (or a line of its own): printed once."""
        if self.quiet:
            return
        self._clear()
        print(text, file=self.stream, flush=True)

    def steps(self, what: str, total: int, unit: str = "") -> "Steps":
        """A phase of `total` units of work; call `advance` as they are done."""
        return Steps(self, what, total, unit)

    def _show(self, text: str) -> None:
        if self.interactive:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
            self._shown = True
        else:
            self.line(text)

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False


class Steps:
    def __init__(self, progress: Progress, what: str, total: int, unit: str) -> None:
        self.progress = progress
        self.what = what
        self.total = total
        self.unit = unit
        self.done = 0
        self.started = time.monotonic()
        self._last_shown = self.started
        if progress.interactive:
            progress._show(self.text())

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        now = time.monotonic()
        due = self.progress.interactive or now - self._last_shown >= self.progress.interval
        if due and self.done < self.total:
            self._last_shown = now
            self.progress._show(self.text())

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        text = f"{self.what}: {self.done:,} of {self.total:,}{unit}"
        elapsed = time.monotonic() - self.started
        if 0 < self.done < self.total and elapsed >= 1:
            text += f", about {duration(elapsed / self.done * (self.total - self.done))} left"
        return text

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def new_log_file(state_dir: Path, name: str) -> Path:
    """`$TOBAN_STATE_DIR/logs/<name>.log`, empty; the previous one is kept as `<name>.log.1`."""
    folder = state_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.log"
    if path.exists():
        path.replace(folder / f"{name}.log.1")
    path.touch()
    return path


def file_handler(path: Path) -> logging.FileHandler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    return handler


@contextmanager
def python_logs_to(handler: logging.Handler) -> Iterator[None]:
    """Python log records of every logger (those the root logger lets through: INFO and above
    in `toban`) also go to `handler` in the block."""
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
