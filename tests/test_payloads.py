"""AutoSend's rules, checked before anything is written."""

from __future__ import annotations

import pytest

from autosend_queue.exceptions import InvalidPayload
from autosend_queue.payloads import build_bulk_payloads, build_send_payload, payload_addresses


def send(**fields):
    base = {"to": "reader@example.com", "subject": "Hi", "html": "<p>Hi</p>"}
    return build_send_payload(**{**base, **fields})


def rule_broken(**fields) -> tuple[str, str]:
    with pytest.raises(InvalidPayload) as caught:
        send(**fields)
    return caught.value.field, caught.value.rule


def test_a_plain_send_has_to_from_subject_and_html():
    assert send() == {
        "to": {"email": "reader@example.com"},
        "from": {"email": "team@example.com", "name": "Team"},
        "subject": "Hi",
        "html": "<p>Hi</p>",
    }


def test_name_and_address_strings_are_split():
    assert send(to="Ada Lovelace <ada@example.com>")["to"] == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
    }


def test_mapping_addresses_are_accepted():
    assert send(to={"email": "ada@example.com", "name": "Ada"})["to"]["name"] == "Ada"


def test_from_defaults_to_default_from(autosend_settings):
    autosend_settings(DEFAULT_FROM="news@example.com")
    assert send()["from"] == {"email": "news@example.com"}


def test_explicit_from_wins_over_default():
    assert send(from_email="boss@example.com")["from"] == {"email": "boss@example.com"}


def test_missing_from_without_default_is_refused(autosend_settings):
    autosend_settings(DEFAULT_FROM="")
    assert rule_broken() == ("from", "required")


def test_missing_recipient_is_refused():
    assert rule_broken(to=[]) == ("to", "required")


def test_two_to_addresses_are_refused():
    assert rule_broken(to=["a@example.com", "b@example.com"]) == ("to", "single_recipient")


def test_invalid_address_names_its_field():
    assert rule_broken(to="not-an-address") == ("to[0]", "invalid_address")


def test_invalid_cc_address_names_its_index():
    assert rule_broken(cc=["ok@example.com", "broken@"]) == ("cc[1]", "invalid_address")


def test_header_injection_in_a_name_is_refused():
    assert rule_broken(to={"email": "a@example.com", "name": "A\r\nBcc: x@evil.com"}) == (
        "to[0]",
        "control_characters",
    )


def test_fifty_recipients_in_all_are_accepted():
    payload = send(
        cc=[f"c{i}@example.com" for i in range(25)], bcc=[f"b{i}@example.com" for i in range(24)]
    )
    assert len(payload["cc"]) + len(payload["bcc"]) + 1 == 50


def test_fifty_one_recipients_are_refused():
    assert rule_broken(cc=[f"c{i}@example.com" for i in range(50)]) == ("cc", "too_many_recipients")


def test_template_without_subject_or_body_is_accepted():
    payload = build_send_payload(
        to="a@example.com", template_id="A-123", dynamic_data={"name": "Ada"}
    )
    assert payload["templateId"] == "A-123"
    assert payload["dynamicData"] == {"name": "Ada"}


def test_template_with_html_is_refused():
    assert rule_broken(template_id="A-1") == ("templateId", "exclusive")


def test_missing_subject_without_template_is_refused():
    assert rule_broken(subject=None) == ("subject", "required")


def test_missing_body_without_template_is_refused():
    assert rule_broken(html=None) == ("html", "required")


def test_text_alone_is_enough_content():
    assert send(html=None, text="Hi")["text"] == "Hi"


def test_subject_of_998_characters_is_accepted():
    assert len(send(subject="x" * 998)["subject"]) == 998


def test_subject_of_999_characters_is_refused():
    assert rule_broken(subject="x" * 999) == ("subject", "max_length")


def test_subject_with_a_line_break_is_refused():
    assert rule_broken(subject="Hi\nthere") == ("subject", "control_characters")


def test_dynamic_data_must_be_a_mapping():
    assert rule_broken(dynamic_data=["x"]) == ("dynamicData", "type")


def test_dynamic_data_must_be_json():
    assert rule_broken(dynamic_data={"when": object()}) == ("dynamicData", "json")


def test_reply_to_and_unsubscribe_group_are_carried():
    payload = send(reply_to="help@example.com", unsubscribe_group_id="grp_1")
    assert payload["replyTo"] == {"email": "help@example.com"}
    assert payload["unsubscribeGroupId"] == "grp_1"


def test_a_payload_over_qstash_message_size_is_refused():
    assert rule_broken(html="x" * 1_000_001) == ("payload", "max_size")


def test_error_message_names_field_and_rule():
    with pytest.raises(InvalidPayload) as caught:
        send(to="nope")
    assert str(caught.value) == "to[0]: 'nope' is not a valid email address"
    assert caught.value.code == "invalid_address"


def test_bulk_keeps_each_recipients_dynamic_data():
    (payload,) = build_bulk_payloads(
        [{"email": "a@example.com", "dynamicData": {"n": 1}}, "B <b@example.com>"],
        template_id="A-1",
        dynamic_data={"shared": True},
    )
    assert payload["recipients"] == [
        {"email": "a@example.com", "dynamicData": {"n": 1}},
        {"email": "b@example.com", "name": "B"},
    ]
    assert payload["dynamicData"] == {"shared": True}


def test_bulk_is_chunked_by_one_hundred_recipients():
    chunks = build_bulk_payloads([f"r{i}@example.com" for i in range(250)], subject="S", text="T")
    assert [len(chunk["recipients"]) for chunk in chunks] == [100, 100, 50]


def test_bulk_without_recipients_is_refused():
    with pytest.raises(InvalidPayload) as caught:
        build_bulk_payloads([], subject="S", text="T")
    assert (caught.value.field, caught.value.rule) == ("recipients", "required")


def test_bulk_invalid_recipient_names_its_index():
    with pytest.raises(InvalidPayload) as caught:
        build_bulk_payloads(["a@example.com", {"email": "bad"}], subject="S", text="T")
    assert caught.value.field == "recipients[1]"


def test_addresses_of_a_body_list_to_cc_and_bcc():
    payload = send(cc=["c@example.com"], bcc=["b@example.com"])
    assert payload_addresses(payload) == ["reader@example.com", "c@example.com", "b@example.com"]
