"""A progress bar for long runs, drawn only when stdout is a terminal.

Nothing is drawn for short runs (fewer than MIN_ITEMS messages) or when the
output goes to a file or a pipe, so scripts and logs see only the report.
"""

import sys

MIN_ITEMS = 200
WIDTH = 30


class Progress:
    """Counts messages done out of a total and redraws one line on the terminal."""

    def __init__(self, total, label, stream=None):
        self.stream = stream or sys.stdout
        self.total, self.label, self.done = total, label, 0
        self.shown = total >= MIN_ITEMS and self.stream.isatty()
        self._last = -1

    def advance(self, count=1, label=None):
        self.done += count
        if label is not None:
            self.label = label
        if self.shown:
            self._draw()

    def _draw(self):
        percent = 100 * self.done // self.total if self.total else 100
        if percent == self._last:
            return
        self._last = percent
        filled = WIDTH * percent // 100
        self.stream.write("\r[%s%s] %3d%% %d/%d %s\x1b[K" % (
            "#" * filled, "." * (WIDTH - filled), percent, self.done, self.total, self.label))
        self.stream.flush()

    def finish(self):
        """Clear the bar so the report starts on a clean line."""
        if self.shown and self._last >= 0:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
