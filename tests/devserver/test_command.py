"""The ``autosend_devserver`` management command: options, banner, clean stop on SIGTERM."""

import io
import os
import re
import signal
import threading
import time

import httpx
import pytest
from django.conf import settings

from autosend_queue.devserver import DEV_QSTASH_TOKEN
from autosend_queue.management.commands.autosend_devserver import Command

if not settings.configured:  # these tests also run without pytest-django
    settings.configure()


def _run_until_sigterm(argv: list[str], while_running: list[int]) -> str:
    """Run the command; once it serves, record the sandbox's status, then send SIGTERM."""
    out = io.StringIO()
    command = Command(stdout=out)
    options = vars(command.create_parser("manage.py", "autosend_devserver").parse_args(argv))

    def probe_then_stop() -> None:
        for _ in range(500):
            inbox = re.search(r"inbox: (http://\S+/)\)", out.getvalue())
            if inbox:
                while_running.append(httpx.get(inbox.group(1)).status_code)
                break
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    prober = threading.Thread(target=probe_then_stop)
    prober.start()
    command.execute(**options)
    prober.join()
    return out.getvalue()


@pytest.mark.skipif(os.name != "posix", reason="sends itself SIGTERM")
def test_command_serves_prints_settings_and_stops_on_sigterm() -> None:
    statuses: list[int] = []

    output = _run_until_sigterm(
        ["--qstash-port", "0", "--autosend-port", "0", "--no-color"], statuses
    )

    assert statuses == [200]
    assert "NEVER for production" in output
    assert DEV_QSTASH_TOKEN in output
    assert '"QSTASH_URL": "http://127.0.0.1:' in output
    assert "/v1" in output
    assert output.rstrip().endswith("autosend_devserver stopped.")


def test_command_options_default_to_the_dev_credentials() -> None:
    parser = Command().create_parser("manage.py", "autosend_devserver")

    options = vars(parser.parse_args([]))

    assert (options["qstash_port"], options["autosend_port"]) == (8080, 8081)
    assert options["token"] == DEV_QSTASH_TOKEN
    assert options["time_scale"] == 1.0
    assert options["rate_limit"] == 2
