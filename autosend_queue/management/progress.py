"""The text progress bar the app's long-running commands draw, one line redrawn in place."""

from __future__ import annotations

from django.core.management.base import OutputWrapper

BAR_WIDTH = 30


def draw_progress(stdout: OutputWrapper, done: int, total: int, noun: str) -> None:
    """Redraw ``[#####.....]  50% 5/10 <noun>`` on the current line."""
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    percent = 100 * done // total if total else 100
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    stdout.write(f"\r[{bar}] {percent:3d}% {done}/{total} {noun}", ending="")
    stdout.flush()
