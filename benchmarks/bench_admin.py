"""Admin history list: page time and queries at 1,000 and 1,000,000 Emails, and their plans.

Each page (the list, each filter, each kind of search) is fetched through Django's test client
as a superuser. Query counts are exact; times are the median of a few fetches, reported as the
ratio to the same page at the smallest size. On PostgreSQL the large size is 1,000,000 rows,
inserted with ``INSERT ... SELECT generate_series`` and then vacuumed and analyzed as autovacuum
would; on SQLite it is 100,000 (a recursive CTE), to keep the run short. At the large size every
query of every page is EXPLAINed and reported as ``index`` or as the table it scans.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import SequenceStepFactory

CHANGELIST = "/admin/autosend_queue/email/"
FETCHES = 7
# What each of a changelist page's queries is, in the order Django runs them.
QUERY_ROLES = ("session", "user", "recent counts", "sequence choices", "capped count", "page")
SECONDS_APART = 30  # 1,000,000 rows span about a year: some 20,000 in the last week.

# What differs between the two databases; the INSERT below is otherwise the same SQL. A literal
# "%" is written "%%": the statement has parameters.
VENDOR_SQL = {
    "postgresql": {
        "series": "WITH series(i) AS (SELECT generate_series(1, %(rows)s))",
        "uuid": "lpad(to_hex(i), 32, '0')::uuid",
        "hex24": "lpad(to_hex(i), 24, '0')",
        "ago": "now() - ((%(rows)s - i) * interval '1 second' * %(apart)s)",
        "json": "jsonb_build_object",
    },
    "sqlite": {
        "series": "WITH RECURSIVE series(i) AS "
        "(SELECT 1 UNION ALL SELECT i + 1 FROM series WHERE i < %(rows)s)",
        "uuid": "printf('%%032x', i)",
        "hex24": "printf('%%024x', i)",
        "ago": "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', "
        "'-' || ((%(rows)s - i) * %(apart)s) || ' seconds')",
        "json": "json_object",
    },
}

INSERT_EMAILS = """
{series}
INSERT INTO autosend_queue_email (
    uuid, kind, status, delivery_status, payload, to_email, recipient_count, subject,
    template_id, scheduled_at, sent_at, attempts, publish_attempts, last_error,
    qstash_message_id, dlq_id, autosend_email_id, autosend_batch_id, sequence_id,
    sequence_step_id, created_at, updated_at
)
SELECT
    {uuid},
    CASE WHEN i %% 10 = 0 THEN 'bulk' ELSE 'single' END,
    CASE WHEN i %% 100 < 90 THEN 'sent' WHEN i %% 100 < 94 THEN 'failed'
         WHEN i %% 100 < 96 THEN 'cancelled' WHEN i %% 100 < 98 THEN 'queued'
         WHEN i %% 100 < 99 THEN 'retrying' ELSE 'pending' END,
    CASE WHEN i %% 100 >= 90 THEN '' WHEN i %% 7 = 0 THEN 'bounced'
         WHEN i %% 3 = 0 THEN 'opened' ELSE 'delivered' END,
    {json}('to', {json}('email', 'reader' || i || '@example.com'),
           'subject', 'Hello number ' || i, 'html', '<p>Hello</p>'),
    'reader' || i || '@example.com',
    1,
    'Hello number ' || i,
    '',
    {ago},
    CASE WHEN i %% 100 < 90 THEN {ago} END,
    1,
    0,
    '',
    'msg_' || i,
    '',
    {hex24},
    '',
    CASE WHEN i %% 20 = 0 THEN %(sequence)s END,
    CASE WHEN i %% 20 = 0 THEN %(step)s END,
    {ago},
    {ago}
FROM series
"""

INSERT_RECIPIENTS = """
INSERT INTO autosend_queue_emailrecipient (email_id, address, delivery_status)
SELECT id, to_email, delivery_status FROM autosend_queue_email
"""


def sizes() -> tuple[int, int]:
    return (1_000, 1_000_000) if connection.vendor == "postgresql" else (1_000, 100_000)


def fill(rows: int, sequence_id: int, step_id: int) -> None:
    """Replace the history with ``rows`` Emails, one recipient each, ids in time order."""
    with connection.cursor() as cursor:
        for table in ("emailrecipient", "emailevent", "email"):
            cursor.execute(f"DELETE FROM autosend_queue_{table}")  # noqa: S608 (fixed names)
        sql = INSERT_EMAILS.format(**VENDOR_SQL[connection.vendor])
        params = {"rows": rows, "apart": SECONDS_APART, "sequence": sequence_id, "step": step_id}
        cursor.execute(sql, params)
        cursor.execute(INSERT_RECIPIENTS)
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def pages(rows: int, sequence_id: int) -> list[tuple[str, str]]:
    """(label, query string) of each page measured; the searches look for a row in the middle."""
    middle = rows // 2
    return [
        ("list, newest first", ""),
        ("filter status=pending (1%)", "status__exact=pending"),
        ("filter status=sent (90%)", "status__exact=sent"),
        ("filter kind=bulk", "kind__exact=bulk"),
        ("filter sequence", f"sequence__id__exact={sequence_id}"),
        ("filter delivery=bounced", "delivery_status__exact=bounced"),
        ("search exact address", f"q=reader{middle}@example.com"),
        ("search uuid", f"q={uuid.UUID(int=middle)}"),
        ("search QStash id", f"q=msg_{middle}"),
        ("search AutoSend id", f"q={middle:024x}"),
        ("search subject words (scans)", f"q=number {middle}"),
    ]


@dataclass
class PageCost:
    rows: int
    queries: int
    seconds: float
    database_seconds: float
    statements: list[str]
    query_seconds: list[float]

    def slowest_query(self) -> str:
        seconds, role = max(zip(self.query_seconds, QUERY_ROLES, strict=True))
        return f"{role} {seconds * 1000:.0f} ms"


def measure(client: Client, url: str) -> PageCost:
    """The cost of one page: the median of a few fetches, after a first one to warm up."""
    client.get(url)
    fetches = []
    for _ in range(FETCHES):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        fetches.append((elapsed, sum(float(query["time"]) for query in queries.captured_queries)))
    return PageCost(
        rows=len(response.context["cl"].result_list),
        queries=len(queries),
        seconds=statistics.median(elapsed for elapsed, _ in fetches),
        database_seconds=statistics.median(database for _, database in fetches),
        statements=[query["sql"] for query in queries.captured_queries],
        query_seconds=[float(query["time"]) for query in queries.captured_queries],
    )


def scanned_tables(sql: str) -> set[str]:
    """The app's tables a query reads in full, from its plan."""
    explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(explain + sql)
        plan = " ".join(str(row) for row in cursor.fetchall())
    marker = "Seq Scan on " if connection.vendor == "postgresql" else "SCAN "
    return {
        chunk.split()[0].strip("\"',()")
        for chunk in plan.split(marker)[1:]
        if chunk.startswith(("autosend_queue_email", '"autosend_queue_email'))
    }


def plan_summary(statements: list[str]) -> str:
    scanned = set().union(*(scanned_tables(sql) for sql in statements if "autosend_queue" in sql))
    return "index" if not scanned else "scans " + ", ".join(sorted(scanned))


def run() -> list[str]:
    step = SequenceStepFactory()
    admin = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(admin)
    small, large = sizes()
    results: dict[int, dict[str, PageCost]] = {}
    for rows in (small, large):
        started = time.perf_counter()
        fill(rows, step.sequence_id, step.pk)
        load_seconds = time.perf_counter() - started
        page_list = pages(rows, step.sequence_id)
        results[rows] = {label: measure(client, f"{CHANGELIST}?{qs}") for label, qs in page_list}
    lines = [
        f"{connection.vendor}: {small:,} and {large:,} Emails ({load_seconds:.0f} s to load); "
        f"each figure is small/large; db = time in the database; plan = EXPLAIN at {large:,}"
    ]
    for label, _ in pages(large, step.sequence_id):
        before, after = results[small][label], results[large][label]
        lines.append(
            f"{label:<30} rows={before.rows:>3}/{after.rows:<3} queries={before.queries}/"
            f"{after.queries} page={before.seconds * 1000:5.0f}/{after.seconds * 1000:5.0f} ms "
            f"({after.seconds / before.seconds:4.1f}x) db={before.database_seconds * 1000:6.1f}/"
            f"{after.database_seconds * 1000:6.1f} ms (slowest: {after.slowest_query()})  "
            f"plan: {plan_summary(after.statements)}"
        )
    return lines
