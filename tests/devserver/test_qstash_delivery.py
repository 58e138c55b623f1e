"""What the QStash emulator sends: deliveries, retries, callbacks, timing and flow control."""

import base64
import itertools
import math
import socket
import time

from qstash import QStash, Receiver

from autosend_queue.devserver import DevServer

from .conftest import FAST, Destination, Reply


def _verify(dev: DevServer, signature: str, body: bytes, url: str) -> None:
    Receiver(dev.current_signing_key, dev.next_signing_key).verify(
        signature=signature, body=body.decode(), url=url
    )


def test_delivery_carries_body_and_forwarded_headers(
    client: QStash, destination: Destination
) -> None:
    published = client.message.publish_json(
        url=destination.url + "/hook",
        body={"a": 1},
        headers={"Authorization": "Bearer AS_key", "X-Custom": "yes"},
    )

    [request] = destination.wait_for(1)

    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.json() == {"a": 1}
    assert request.headers["authorization"] == "Bearer AS_key"
    assert request.headers["x-custom"] == "yes"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["upstash-message-id"] == published.message_id
    assert request.headers["upstash-retried"] == "0"
    assert request.headers["user-agent"] == "Upstash-QStash"


def test_delivery_signature_verifies_with_the_sdk_receiver(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    url = destination.url + "/hook?x=1"
    client.message.publish_json(url=url, body={"a": 1})

    [request] = destination.wait_for(1)

    assert request.path == "/hook?x=1"
    _verify(dev, request.headers["upstash-signature"], request.body, url)


def test_delivery_uses_the_upstash_method(client: QStash, destination: Destination) -> None:
    client.message.publish_json(url=destination.url, body={}, method="PUT")

    [request] = destination.wait_for(1)

    assert request.method == "PUT"


def test_delay_holds_the_delivery_back(client: QStash, destination: Destination) -> None:
    published_at = time.time()
    client.message.publish_json(url=destination.url, body={}, delay="1s")

    time.sleep(0.5)
    assert destination.requests == []
    [request] = destination.wait_for(1)
    assert request.at - published_at >= 0.95


def test_not_before_wins_over_delay(client: QStash, destination: Destination) -> None:
    not_before = int(time.time()) + 1
    client.message.publish_json(url=destination.url, body={}, delay="1h", not_before=not_before)

    [request] = destination.wait_for(1, timeout=3)

    assert request.at >= not_before


def test_release_delivers_a_delayed_message_now(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    published = client.message.publish_json(url=destination.url, body={}, delay="1h")

    assert dev.release(published.message_id)
    destination.wait_for(1)


def test_failed_deliveries_are_retried_with_scaled_backoff(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    destination.reply_with(Reply(500), Reply(404), Reply(503))
    client.message.publish_json(url=destination.url, body={})

    requests = destination.wait_for(4)

    assert [r.headers["upstash-retried"] for r in requests] == ["0", "1", "2", "3"]
    for retry_number, (before, after) in enumerate(itertools.pairwise(requests), 1):
        assert after.at - before.at >= math.exp(2.5 * retry_number) * FAST * 0.9
    assert dev.wait_idle()
    assert dev.dlq == []


def test_retry_after_from_the_destination_sets_the_backoff(
    client: QStash, destination: Destination
) -> None:
    destination.reply_with(Reply(429, headers={"Retry-After": "3000"}))  # 0.3 s once scaled
    client.message.publish_json(url=destination.url, body={})

    first, second = destination.wait_for(2)

    assert second.at - first.at >= 3000 * FAST * 0.95


def test_unreachable_destination_is_retried_then_dead_lettered(
    dev: DevServer, client: QStash
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client.message.publish_json(url=f"http://127.0.0.1:{closed_port}/", body={}, retries=1)

    assert dev.wait_idle()
    assert [a.status for a in dev.attempts] == [0, 0]
    assert dev.dlq[0].response_status == 0


def test_callback_is_called_after_every_attempt(
    dev: DevServer, client: QStash, destination: Destination, receiver: Destination
) -> None:
    destination.reply_with(Reply(500, body=b"oops"), Reply(200, body=b"done"))
    callback_url = receiver.url + "/callback"
    published = client.message.publish_json(
        url=destination.url,
        body={"a": 1},
        headers={"Authorization": "Bearer AS_key"},
        retries=2,
        callback=callback_url,
    )

    callbacks = sorted(receiver.wait_for(2), key=lambda r: r.json()["retried"])

    bodies = [c.json() for c in callbacks]
    assert [(b["status"], b["retried"]) for b in bodies] == [(500, 0), (200, 1)]
    assert [base64.b64decode(b["body"]) for b in bodies] == [b"oops", b"done"]
    first = bodies[0]
    assert first["maxRetries"] == 2
    assert first["sourceMessageId"] == published.message_id
    assert (first["url"], first["method"]) == (destination.url, "POST")
    assert base64.b64decode(first["sourceBody"]) == b'{"a": 1}'
    assert first["sourceHeader"]["Upstash-Forward-Authorization"] == ["Bearer AS_key"]
    assert "Authorization" not in first["sourceHeader"]
    assert isinstance(first["createdAt"], int)
    assert isinstance(first["header"], dict)
    for callback in callbacks:
        _verify(dev, callback.headers["upstash-signature"], callback.body, callback_url)


def test_failure_callback_carries_the_dlq_id(
    dev: DevServer, client: QStash, destination: Destination, receiver: Destination
) -> None:
    destination.reply_with(Reply(500), Reply(502, body=b"bad gateway"))
    failure_url = receiver.url + "/failed"
    client.message.publish_json(
        url=destination.url, body={}, retries=1, failure_callback=failure_url
    )

    [failure] = receiver.wait_for(1)
    assert dev.wait_idle()

    body = failure.json()
    assert body["dlqId"] == dev.dlq[0].dlq_id
    assert (body["status"], body["retried"], body["maxRetries"]) == (502, 1, 1)
    assert base64.b64decode(body["body"]) == b"bad gateway"
    _verify(dev, failure.headers["upstash-signature"], failure.body, failure_url)


def test_failing_callback_is_retried(
    dev: DevServer, client: QStash, destination: Destination, receiver: Destination
) -> None:
    receiver.reply_with(Reply(500))
    client.message.publish_json(url=destination.url, body={}, callback=receiver.url)

    first, second = receiver.wait_for(2)

    assert first.body == second.body
    assert first.headers["upstash-message-id"] == second.headers["upstash-message-id"]
    assert second.headers["upstash-retried"] == "1"


def test_callback_gets_only_callback_forward_headers(
    client: QStash, destination: Destination, receiver: Destination
) -> None:
    client.message.publish_json(
        url=destination.url,
        body={},
        headers={"X-For-Destination": "d"},
        callback=receiver.url,
        callback_headers={"Forward-X-For-Callback": "c"},
    )

    [callback] = receiver.wait_for(1)

    assert callback.headers["x-for-callback"] == "c"
    assert "x-for-destination" not in callback.headers


def test_cancel_between_retries_stops_the_retries(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    destination.reply_with(Reply(500, headers={"Retry-After": "3000"}))  # 0.3 s once scaled
    published = client.message.publish_json(url=destination.url, body={})
    destination.wait_for(1)

    client.message.cancel(published.message_id)
    time.sleep(0.4)

    assert len(destination.requests) == 1
    assert dev.wait_idle()


def test_cancelled_message_is_never_delivered(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    published = client.message.publish_json(url=destination.url, body={}, delay="1h")

    client.message.cancel(published.message_id)

    assert not dev.release(published.message_id)
    assert dev.wait_idle(timeout=1)
    assert destination.requests == []


def test_flow_control_rate_spaces_deliveries(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    for _ in range(3):
        client.message.publish_json(
            url=destination.url, body={}, flow_control={"key": "k", "rate": 2, "period": "1s"}
        )

    first, second, third = destination.wait_for(3, timeout=3)

    assert second.at - first.at < 0.5
    assert third.at - first.at >= 0.95


def test_flow_control_parallelism_runs_one_at_a_time(
    client: QStash, destination: Destination
) -> None:
    destination.reply_with(Reply(delay=0.2), Reply(delay=0.2))
    for _ in range(2):
        client.message.publish_json(
            url=destination.url, body={}, flow_control={"key": "p", "parallelism": 1}
        )

    first, second = destination.wait_for(2)

    assert second.at - first.at >= 0.19


def test_slow_destination_does_not_hold_up_others(
    client: QStash, destination: Destination, receiver: Destination
) -> None:
    destination.reply_with(Reply(delay=0.3))
    client.message.publish_json(url=destination.url, body={})
    destination.wait_for(1)

    client.message.publish_json(url=receiver.url, body={})

    [fast] = receiver.wait_for(1)
    assert fast.at - destination.requests[0].at < 0.25


def test_every_attempt_is_recorded(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    destination.reply_with(Reply(500))
    published = client.message.publish_json(url=destination.url, body={})

    assert dev.wait_idle()

    assert [(a.kind, a.message_id, a.retried, a.status) for a in dev.attempts] == [
        ("delivery", published.message_id, 0, 500),
        ("delivery", published.message_id, 1, 200),
    ]
