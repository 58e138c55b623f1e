"""Helpers for observing the QStash HTTP boundary with respx."""

from __future__ import annotations

import json
from itertools import count

import httpx
import respx


def accept_batch(router: respx.MockRouter) -> respx.Route:
    """Answer every /v2/batch call with one accepted message id per entry."""
    ids = count(1)

    def answer(request: httpx.Request) -> httpx.Response:
        entries = json.loads(request.content)
        return httpx.Response(201, json=[{"messageId": f"msg_{next(ids)}"} for _ in entries])

    return router.post("/v2/batch").mock(side_effect=answer)


def batch_entries(route: respx.Route, call: int = -1) -> list[dict]:
    """The JSON entries of one recorded /v2/batch call."""
    return json.loads(route.calls[call].request.content)  # type: ignore[no-any-return]
