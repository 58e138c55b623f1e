"""Parsing of QStash duration strings such as ``90s``, ``10m``, ``24h``, ``2d`` or ``3d5h12m``."""

import re

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+)([smhd])")


def parse_duration(text: str) -> float:
    """Return the number of seconds ``text`` stands for; a bare number is seconds.

    Raises ValueError for anything else, so callers can answer 400.
    """
    text = text.strip()
    if text.isdigit():
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"invalid duration: {text!r}")
    return float(sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts))
