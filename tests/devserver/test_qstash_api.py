"""The QStash REST API of the devserver, driven through the official `qstash` SDK."""

import httpx
import pytest
from qstash import QStash
from qstash.errors import QStashError

from autosend_queue.devserver import DEV_QSTASH_TOKEN, DevServer

from .conftest import Destination, Reply


def test_publish_json_answers_a_message_id(client: QStash, destination: Destination) -> None:
    response = client.message.publish_json(url=destination.url, body={"a": 1})

    assert response.message_id.startswith("msg_")
    assert response.deduplicated is False


def test_publish_answers_201_created(
    dev: DevServer, destination: Destination, http: httpx.Client
) -> None:
    response = http.post(
        f"{dev.qstash_url}/v2/publish/{destination.url}",
        headers={"Authorization": f"Bearer {dev.token}"},
        content=b"x",
    )

    assert response.status_code == 201
    assert set(response.json()) == {"messageId"}


def test_wrong_token_is_refused_with_401(dev: DevServer, destination: Destination) -> None:
    client = QStash("not-the-token", base_url=dev.qstash_url, retry=False)

    with pytest.raises(QStashError, match="401"):
        client.message.publish_json(url=destination.url, body={})


def test_default_token_is_upstash_dev_server_token(http: httpx.Client) -> None:
    with DevServer(qstash_port=0, autosend_port=0) as dev:
        assert dev.token == DEV_QSTASH_TOKEN
        response = http.get(
            f"{dev.qstash_url}/v2/dlq", headers={"Authorization": f"Bearer {DEV_QSTASH_TOKEN}"}
        )
        assert response.status_code == 200


def test_invalid_destination_is_refused_with_400(dev: DevServer, client: QStash) -> None:
    with pytest.raises(QStashError, match="400"):
        client.message.publish_json(url="not-a-url", body={})


def test_invalid_delay_is_refused_with_400(client: QStash, destination: Destination) -> None:
    with pytest.raises(QStashError, match="400"):
        client.message.publish_json(url=destination.url, body={}, delay="soon")


def test_message_get_shows_a_waiting_message(client: QStash, destination: Destination) -> None:
    published = client.message.publish_json(
        url=destination.url,
        body={"a": 1},
        headers={"Authorization": "Bearer AS_key"},
        delay="1h",
        retries=2,
        callback=destination.url + "/callback",
        flow_control={"key": "autosend", "rate": 2, "period": "1s", "parallelism": 1},
    )

    message = client.message.get(published.message_id)

    assert message.message_id == published.message_id
    assert message.url == destination.url
    assert message.method == "POST"
    assert message.body == '{"a": 1}'
    assert message.headers is not None
    assert message.headers["Authorization"] == ["Bearer AS_key"]
    assert message.max_retries == 2
    assert message.not_before >= message.created_at + 3600 * 1000
    assert message.callback == destination.url + "/callback"
    assert message.flow_control is not None
    assert (message.flow_control.key, message.flow_control.rate) == ("autosend", 2)
    assert (message.flow_control.period, message.flow_control.parallelism) == (1, 1)


def test_message_get_of_unknown_message_is_404(client: QStash) -> None:
    with pytest.raises(QStashError, match="404"):
        client.message.get("msg_unknown")


def test_message_get_is_404_once_delivered(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    published = client.message.publish_json(url=destination.url, body={})
    assert dev.wait_idle()

    with pytest.raises(QStashError, match="404"):
        client.message.get(published.message_id)


def test_batch_json_answers_one_id_per_message(client: QStash, destination: Destination) -> None:
    responses = client.message.batch_json(
        [{"url": destination.url, "body": {"n": n}} for n in range(3)]
    )

    ids = [response.message_id for response in responses]  # type: ignore[union-attr]
    assert len(set(ids)) == 3
    assert all(i.startswith("msg_") for i in ids)


def test_batch_answers_an_error_entry_and_accepts_the_others(
    dev: DevServer, destination: Destination, http: httpx.Client
) -> None:
    entries = [
        {"destination": destination.url, "headers": {}, "body": "1"},
        {"destination": "nowhere", "headers": {}, "body": "2"},
        {"destination": destination.url, "headers": {}, "body": "3"},
    ]

    answer = http.post(
        f"{dev.qstash_url}/v2/batch",
        headers={"Authorization": f"Bearer {dev.token}"},
        json=entries,
    ).json()

    assert "messageId" in answer[0]
    assert "messageId" in answer[2]
    assert set(answer[1]) == {"error"}
    assert dev.wait_idle()
    assert sorted(r.body for r in destination.requests) == [b"1", b"3"]


def test_cancel_removes_a_waiting_message(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    published = client.message.publish_json(url=destination.url, body={}, delay="1h")

    client.message.cancel(published.message_id)

    assert dev.messages == []
    with pytest.raises(QStashError, match="404"):
        client.message.get(published.message_id)


def test_cancel_of_unknown_message_is_404(client: QStash) -> None:
    with pytest.raises(QStashError, match="404"):
        client.message.cancel("msg_unknown")


def test_cancel_many_answers_how_many_were_cancelled(
    client: QStash, destination: Destination
) -> None:
    ids = [
        client.message.publish_json(url=destination.url, body={}, delay="1h").message_id
        for _ in range(2)
    ]

    assert client.message.cancel_many([*ids, "msg_unknown"]) == 2


def test_cancel_all_cancels_every_waiting_message(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    for _ in range(3):
        client.message.publish_json(url=destination.url, body={}, delay="1h")

    assert client.message.cancel_all() == 3
    assert dev.messages == []


def test_deduplication_id_answers_the_first_message_id(
    client: QStash, destination: Destination
) -> None:
    first = client.message.publish_json(url=destination.url, body={}, deduplication_id="e-1")
    second = client.message.publish_json(url=destination.url, body={}, deduplication_id="e-1")

    assert second.message_id == first.message_id
    assert second.deduplicated is True


def test_deduplicated_publish_answers_202(
    dev: DevServer, destination: Destination, http: httpx.Client
) -> None:
    def publish() -> httpx.Response:
        return http.post(
            f"{dev.qstash_url}/v2/publish/{destination.url}",
            headers={"Authorization": f"Bearer {dev.token}", "Upstash-Deduplication-Id": "x"},
        )

    assert publish().status_code == 201
    assert publish().status_code == 202


def test_deduplicated_message_is_delivered_once(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    for _ in range(2):
        client.message.publish_json(url=destination.url, body={}, deduplication_id="once")
    assert dev.wait_idle()

    assert len(destination.requests) == 1


def test_content_based_deduplication_matches_same_content(
    client: QStash, destination: Destination
) -> None:
    def publish(body: dict[str, int]) -> tuple[str, bool]:
        response = client.message.publish_json(
            url=destination.url, body=body, content_based_deduplication=True
        )
        return response.message_id, response.deduplicated

    first_id, _ = publish({"a": 1})
    assert publish({"a": 1}) == (first_id, True)
    assert publish({"a": 2})[1] is False


def test_batch_marks_a_duplicate_entry_deduplicated(
    client: QStash, destination: Destination
) -> None:
    first = client.message.publish_json(url=destination.url, body={}, deduplication_id="d")

    [response] = client.message.batch_json(
        [{"url": destination.url, "body": {}, "deduplication_id": "d"}]
    )

    assert response.message_id == first.message_id  # type: ignore[union-attr]
    assert response.deduplicated is True  # type: ignore[union-attr]


def test_dlq_list_shows_a_message_whose_retries_ran_out(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    destination.reply_with(Reply(503, body=b"down"), Reply(503, body=b"still down"))
    published = client.message.publish_json(url=destination.url, body={"a": 1}, retries=1)
    assert dev.wait_idle()

    [entry] = client.dlq.list().messages

    assert entry.message_id == published.message_id
    assert entry.dlq_id == dev.dlq[0].dlq_id
    assert entry.url == destination.url
    assert entry.body == '{"a": 1}'
    assert entry.max_retries == 1
    assert entry.response_status == 503
    assert entry.response_body == "still down"


def test_dlq_list_pages_with_a_cursor(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    destination.reply_with(*[Reply(500)] * 3)
    for _ in range(3):
        client.message.publish_json(url=destination.url, body={}, retries=0)
    assert dev.wait_idle()

    first_page = client.dlq.list(count=2)
    second_page = client.dlq.list(cursor=first_page.cursor, count=2)

    assert len(first_page.messages) == 2
    assert len(second_page.messages) == 1
    assert second_page.cursor is None


def test_dlq_delete_removes_an_entry(
    dev: DevServer, client: QStash, destination: Destination
) -> None:
    destination.reply_with(Reply(500))
    client.message.publish_json(url=destination.url, body={}, retries=0)
    assert dev.wait_idle()

    client.dlq.delete(dev.dlq[0].dlq_id)

    assert client.dlq.list().messages == []
