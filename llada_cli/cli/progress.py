"""Training progress: a rich bar on a terminal, plain log lines on stderr otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ..engine.data.formats import ConversationCounts
from .common import counted, err, flag

if TYPE_CHECKING:
    from ..engine.training.trainer import TrainEvent


# What a training bar shows after the step count, most important first: a narrow terminal drops
# fields from the end, never the run's name, the step count or the loss.
FIELDS = (
    ("loss", "loss {:.4f}"),
    ("val_loss", "val {:.4f}"),
    ("lr", "lr {:.2e}"),
    ("tokens_per_s", "{:,.0f} tok/s"),
    ("block_size", "block {:.0f}"),  # averaged over processes, so a float
)
MIN_BAR, MAX_BAR = 10, 40


def _describe(record: dict) -> str:
    return "  ".join(fmt.format(record[key]) for key, fmt in FIELDS if key in record)


def bar_line(name: str, done: float, total: float, count: str, fields: list[str], width: int) -> str:
    """One progress line that fits `width` columns: name, bar, count, then the fields in order;
    fields go from the end (then the bar shrinks, then goes) before anything is cut."""
    kept = list(fields)
    while True:
        text = "  ".join([count, *kept])
        room = width - len(name) - len(text) - 2
        if room >= MIN_BAR or not kept[1:]:
            break
        kept.pop()
    bar = min(MAX_BAR, room) if room >= 3 else 0
    filled = round(bar * min(done / total, 1.0)) if total else 0
    drawn = f"[bar.finished]{'━' * filled}[/][bar.back]{'━' * (bar - filled)}[/] " if bar else ""
    return f"[bold]{name}[/] {drawn}{text}"


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "default"
    return str(value)


@contextmanager
def counting(description: str, verbosity: int) -> Iterator[Callable[[int, int], None] | None]:
    """A bar for a long wait counted in items (questions, rows) on a terminal; it goes when done."""
    if verbosity < 0 or not err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@contextmanager
def waiting(description: str, verbosity: int) -> Iterator[None]:
    """A spinner for a long wait with no count (reading a checkpoint); it goes when done."""
    if verbosity < 0 or not err.is_terminal:
        yield
        return
    with err.status(description):
        yield


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s")


FEW_STEPS = 20  # below this, a run is a smoke test: say so


def run_line(record: dict, total_steps: int) -> str:
    """'AR pretraining, preset small, 12.9M parameters; cpu fp32, 2 threads; 136 steps'."""
    return (
        f"{record['what']}, {record['parameters'] / 1e6:.1f}M parameters; "
        f"{record['device']} {record['dtype']}, {counted(record['threads'], 'thread')}; "
        f"{counted(total_steps, 'step')}"
    )


def data_line(record: dict, total_steps: int) -> str:
    """'8 rows a step (1 epoch) of 412 train rows, 21 val rows of 128 tokens; 3 cut to fit, ...'."""
    epochs = total_steps * record["rows_per_step"] / max(record["rows"], 1)
    text = (
        f"{counted(record['rows_per_step'], 'row')} a step ({counted(epochs, 'epoch', spec='.2g')}) "
        f"of {counted(record['rows'], 'train row')}, {counted(record['val_rows'], 'val row')} "
        f"of {counted(record['seq_len'], 'token')}"
    )
    if "truncated" in record:
        text += f"; {record['truncated']} cut to fit, {record['skipped']} skipped (no answer left)"
    return text


class TrainProgress:
    """Event handler for Trainer; use as a context manager around run_stage()."""

    def __init__(self, run_name: str, verbosity: int) -> None:
        self.run_name = run_name
        self.verbosity = verbosity
        self.live = err.is_terminal and verbosity >= 0
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.reading: TaskID | None = None  # the tokenization task, while a file is tokenized
        self.started, self.first_step = time.perf_counter(), 0
        self.read_started = 0.0

    def __enter__(self) -> TrainProgress:
        if self.live:
            self.progress = Progress(TextColumn("{task.fields[line]}"), console=err)
            self.progress.start()
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: TrainEvent) -> None:
        if event.kind == "prepare":
            self._reading(event.step, event.total_steps)
        elif event.kind == "start":
            self._start(event)
        elif event.kind == "log":  # carries the validation loss too when the step evaluated
            self._update(event)
        elif event.kind == "end" and self.verbosity >= 0:
            best = event.record.get("best")
            best_text = f", best val {best['val_loss']:.4f} at step {best['step']}" if best else ""
            err.print(f"{self.run_name}: {event.record['status']} at step {event.step}{best_text}")

    def _reading(self, done: int, total: int) -> None:
        """Tokenizing a file: a bar in MB with MB/s and the time left; off a terminal, one line at the end."""
        if self.verbosity < 0:
            return
        if not self.read_started:
            self.read_started = time.perf_counter()
        seconds = max(1e-9, time.perf_counter() - self.read_started)
        speed = f"{done / 2**20 / seconds:.1f} MB/s"
        if self.progress is not None:
            count = f"{done / 2**20:,.0f}/{total / 2**20:,.0f} MB"
            line = bar_line("tokenizing", done, total, count, [speed], err.size.width)
            if self.reading is None:
                self.reading = self.progress.add_task("tokenizing", line=line)
            self.progress.update(self.reading, line=line)
        elif done == total:
            err.print(f"{self.run_name}: tokenized {total / 2**20:,.1f} MB in {seconds:.0f} s ({speed})")

    def _start(self, event: TrainEvent) -> None:
        if self.reading is not None and self.progress is not None:
            self.progress.remove_task(self.reading)
            self.reading = None
        if event.record.get("warning"):
            err.print(f"{self.run_name}: {event.record['warning']}", highlight=False)
        if self.verbosity >= 0 and "what" in event.record:
            err.print(f"{self.run_name}: {run_line(event.record, event.total_steps)}", highlight=False)
        if self.verbosity >= 0 and "rows" in event.record:
            err.print(f"{self.run_name}: {data_line(event.record, event.total_steps)}", highlight=False)
            if skipped := ConversationCounts.of_summary(event.record).line():
                err.print(f"{self.run_name}: {skipped}", highlight=False)
            if event.total_steps < FEW_STEPS and not event.step:
                err.print(
                    f"{self.run_name}: {counted(event.total_steps, 'step')} "
                    f"{'is' if event.total_steps == 1 else 'are'} too few to learn much; "
                    "give more --max-steps or --epochs for a model that answers",
                    highlight=False,
                )
        if self.verbosity > 0 and event.record.get("objective"):
            resolved = " ".join(f"{flag(k)} {_shown(v)}" for k, v in event.record["objective"].items())
            err.print(f"{self.run_name}: objective {resolved}", highlight=False)
        self.started, self.first_step = time.perf_counter(), event.step
        if self.progress is not None:
            line = self._line(event.step, event.total_steps, {})
            self.task = self.progress.add_task(self.run_name, line=line)
        elif self.verbosity >= 0 and event.step:
            err.print(f"{self.run_name}: resuming at step {event.step}/{event.total_steps}")

    def _update(self, event: TrainEvent) -> None:
        text = _describe(event.record)
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, line=self._line(event.step, event.total_steps, event.record))
        elif self.verbosity >= 0:
            timing = self._timing(event.step, event.total_steps)
            err.print(
                f"{self.run_name} step {event.step}/{event.total_steps}  {text}  {timing}", highlight=False
            )

    def _line(self, step: int, total: int, record: dict) -> str:
        """The bar's line: the step count and the loss always, then the time left and the rest."""
        fields = [fmt.format(record[key]) for key, fmt in FIELDS if key in record]
        if step > self.first_step:
            elapsed = time.perf_counter() - self.started
            fields.insert(1, f"{duration(elapsed / (step - self.first_step) * (total - step))} left")
        return bar_line(self.run_name, step, total, f"{step}/{total}", fields, err.size.width)

    def _timing(self, step: int, total: int) -> str:
        """'1m05s elapsed, 3m10s left' from the pace since this process started training."""
        elapsed = time.perf_counter() - self.started
        done = max(step - self.first_step, 1)
        return f"{duration(elapsed)} elapsed, {duration(elapsed / done * (total - step))} left"
