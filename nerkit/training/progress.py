"""Progress display: a rich bar on a terminal, one plain line per epoch elsewhere (CI, logs)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressReporter:
    """``bar`` turns the live bar on (on a terminal only); ``enabled`` turns all output off
    (non-main processes). Epoch summaries are printed whenever enabled."""

    def __init__(self, *, enabled: bool, bar: bool, epochs: int, batches_per_epoch: int):
        self.enabled = enabled
        self.epochs = epochs
        self.console = Console(stderr=True)
        self.interactive = enabled and bar and self.console.is_terminal
        self.progress = None
        self.task = None
        if self.interactive:
            self.progress = Progress(TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                                     TextColumn("{task.fields[speed]:.0f} words/s"),
                                     TextColumn("dev F1 {task.fields[dev]}"), TimeElapsedColumn(),
                                     console=self.console)
            self.task = self.progress.add_task("train", total=batches_per_epoch, epoch=1, epochs=epochs, loss=0.0,
                                               speed=0.0, dev="-")

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def step(self, *, epoch: int, batch_in_epoch: int, loss: float | None = None,
             words_per_second: float | None = None) -> None:
        """The bar at this point of ``epoch`` (0-based); ``loss`` (the epoch's mean so far) and
        the speed when they have just been read from the device, else the last ones stay."""
        if self.progress:
            figures = {"loss": loss, "speed": words_per_second}
            self.progress.update(self.task, completed=batch_in_epoch, epoch=epoch + 1,
                                 **{name: value for name, value in figures.items() if value is not None})

    def epoch_end(self, record: dict, *, best: float | None) -> None:
        if not self.enabled:
            return
        dev = f"{100 * record['dev_f1']:.2f}" if "dev_f1" in record else "-"
        line = (f"epoch {record['epoch']}/{self.epochs}  loss {record['loss']:.4f}  "
                f"{record['words_per_second']:.0f} words/s  {record['seconds']:.1f}s  dev F1 {dev}"
                + (f"  (best {100 * best:.2f})" if best is not None else ""))
        if self.progress:
            self.progress.update(self.task, completed=0, dev=dev)
            self.progress.console.print(line)
        else:
            print(line, file=sys.stderr, flush=True)
