"""Runs timed jobs on worker threads, in due-time order, within per-key flow-control limits.

A dispatcher thread keeps a heap of jobs by due time. A due job whose flow-control key is over its
rate waits until the rate allows it; one whose key has all its parallel slots busy is parked and
woken when a slot frees. Everything else goes straight to a worker pool, so one slow destination
holds up only the jobs that share its flow-control key.
"""

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

DEFAULT_WORKERS = 32

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowControl:
    """QStash flow control for one key: ``rate`` starts per ``period`` seconds, ``parallelism``."""

    key: str
    rate: int | None = None
    period: float = 1.0
    parallelism: int | None = None


@dataclass(order=True)
class _Job:
    due: float
    sequence: int
    action: Callable[[], None] = field(compare=False)
    flow: FlowControl | None = field(compare=False)
    is_live: Callable[[], bool] = field(compare=False)
    tag: str | None = field(compare=False)


@dataclass
class _FlowState:
    limits: FlowControl
    recent_starts: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    parked: list[_Job] = field(default_factory=list)

    def wait_for_rate(self, now: float) -> float:
        """Seconds until the rate allows another start (0 when it does now)."""
        if self.limits.rate is None:
            return 0.0
        while self.recent_starts and self.recent_starts[0] <= now - self.limits.period:
            self.recent_starts.popleft()
        if len(self.recent_starts) < self.limits.rate:
            return 0.0
        return self.recent_starts[0] + self.limits.period - now

    def has_free_slot(self) -> bool:
        return self.limits.parallelism is None or self.in_flight < self.limits.parallelism


class Scheduler:
    """Call actions at monotonic times on a pool of worker threads."""

    def __init__(self, workers: int = DEFAULT_WORKERS) -> None:
        self._heap: list[_Job] = []
        self._sequence = itertools.count()
        self._flows: dict[str, _FlowState] = {}
        self._running_jobs = 0
        self._condition = threading.Condition()
        self._stopping = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devserver-worker")
        self._dispatcher = threading.Thread(
            target=self._dispatch_forever, name="devserver-scheduler", daemon=True
        )

    def start(self) -> None:
        self._dispatcher.start()

    def stop(self) -> None:
        """Drop the jobs not started yet and wait for the running ones to finish."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._dispatcher.is_alive():
            self._dispatcher.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def call_at(
        self,
        due: float,
        action: Callable[[], None],
        *,
        flow: FlowControl | None = None,
        is_live: Callable[[], bool] = lambda: True,
        tag: str | None = None,
    ) -> None:
        """Run ``action`` at ``due`` (a ``time.monotonic()`` time) unless ``is_live()`` is false.

        ``tag`` names the job for `make_due_now`. The latest limits given for a flow-control key
        replace the earlier ones, as in QStash.
        """
        with self._condition:
            if flow is not None:
                self._flows.setdefault(flow.key, _FlowState(flow)).limits = flow
            heapq.heappush(self._heap, _Job(due, next(self._sequence), action, flow, is_live, tag))
            self._condition.notify_all()

    def call_soon(self, action: Callable[[], None]) -> None:
        self.call_at(time.monotonic(), action)

    def make_due_now(self, tag: str) -> int:
        """Move the live waiting jobs tagged ``tag`` to now; return how many were moved."""
        now = time.monotonic()
        with self._condition:
            moved = 0
            for job in self._heap:
                if job.due > now and job.tag == tag and job.is_live():
                    job.due = now
                    moved += 1
            heapq.heapify(self._heap)
            self._condition.notify_all()
            return moved

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is waiting, parked or running; False if ``timeout`` passes first."""
        with self._condition:
            return self._condition.wait_for(self._is_idle, timeout)

    def _is_idle(self) -> bool:
        # Cancelled jobs would otherwise count as waiting until their due time.
        self._heap = [job for job in self._heap if job.is_live()]
        heapq.heapify(self._heap)
        parked = any(state.parked for state in self._flows.values())
        return not self._heap and not parked and self._running_jobs == 0

    def _dispatch_forever(self) -> None:
        with self._condition:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._start_or_defer(heapq.heappop(self._heap), now)
                else:
                    timeout = self._heap[0].due - now if self._heap else None
                    self._condition.wait(timeout)

    def _start_or_defer(self, job: _Job, now: float) -> None:
        if not job.is_live():
            self._condition.notify_all()  # idle waiters may be waiting for this job to go
            return
        state = self._flows[job.flow.key] if job.flow else None
        if state is not None:
            rate_wait = state.wait_for_rate(now)
            if rate_wait > 0:
                job.due = now + rate_wait
                heapq.heappush(self._heap, job)
                return
            if not state.has_free_slot():
                state.parked.append(job)
                return
            state.recent_starts.append(now)
            state.in_flight += 1
        self._running_jobs += 1
        self._pool.submit(self._run, job, state)

    def _run(self, job: _Job, state: _FlowState | None) -> None:
        try:
            job.action()
        except Exception:
            logger.exception("devserver job failed")
        finally:
            with self._condition:
                self._running_jobs -= 1
                if state is not None:
                    state.in_flight -= 1
                    self._unpark(state)
                self._condition.notify_all()

    def _unpark(self, state: _FlowState) -> None:
        now = time.monotonic()
        for job in state.parked:
            job.due = now
            heapq.heappush(self._heap, job)
        state.parked.clear()
