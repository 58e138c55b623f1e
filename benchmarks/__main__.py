"""Run every ``benchmarks/bench_*.py`` module's ``run()`` against a throwaway database.

``python -m benchmarks [name ...]``. The database is SQLite in memory, or ``DATABASE_URL``
(a ``test_`` database is created beside it and dropped afterwards, as the test runner does).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from collections.abc import Iterator


def bench_modules(selected: list[str]) -> Iterator[str]:
    names = sorted(
        module.name
        for module in pkgutil.iter_modules([os.path.dirname(__file__)])
        if module.name.startswith("bench_")
    )
    for name in names:
        if not selected or name.removeprefix("bench_") in selected or name in selected:
            yield name


def main(selected: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.core.management import call_command
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    django.setup()
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        for name in bench_modules(selected):
            call_command("flush", interactive=False, verbosity=0)  # Each starts empty (TRUNCATE).
            started = time.perf_counter()
            module = importlib.import_module(f"benchmarks.{name}")
            print(f"## {name}: {module.__doc__.strip().splitlines()[0] if module.__doc__ else ''}")
            for line in module.run():
                print(f"   {line}", flush=True)
            print(f"   ({time.perf_counter() - started:.1f} s)")
    finally:
        teardown_databases(databases, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
