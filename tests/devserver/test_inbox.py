"""The sandbox's inbox pages: listed newest first, everything escaped, HTML in a sandboxed frame."""

import html
import re

import httpx

from autosend_queue.devserver import DevServer

SCRIPT = "<script>alert(1)</script>"


def _send(http: httpx.Client, dev: DevServer, **payload: str) -> str:
    body = {
        "to": {"email": "ada@example.com", "name": payload.pop("name", "Ada")},
        "from": {"email": "hello@example.org"},
        **payload,
    }
    response = http.post(
        f"{dev.autosend_api_url}/mails/send",
        json=body,
        headers={"Authorization": "Bearer AS_key"},
    )
    assert response.status_code == 200
    return str(response.json()["data"]["emailId"])


def _outside_srcdoc(page: str) -> str:
    return re.sub(r'srcdoc="[^"]*"', "", page)


def test_inbox_lists_emails_newest_first(dev: DevServer, http: httpx.Client) -> None:
    first = _send(http, dev, subject="First", text="1")
    second = _send(http, dev, subject="Second", text="2")

    page = http.get(dev.autosend_url + "/").text

    assert page.index(second) < page.index(first)
    assert f'href="/emails/{first}"' in page


def test_inbox_shows_the_template_of_a_template_email(dev: DevServer, http: httpx.Client) -> None:
    _send(http, dev, templateId="A-welcome")

    assert "template A-welcome" in http.get(dev.autosend_url + "/").text


def test_inbox_escapes_a_script_in_the_subject_and_name(dev: DevServer, http: httpx.Client) -> None:
    _send(http, dev, subject=SCRIPT, text="x", name=SCRIPT)

    page = http.get(dev.autosend_url + "/").text

    assert "<script" not in page
    assert html.escape(SCRIPT) in page


def test_email_page_shows_html_in_a_sandboxed_srcdoc_frame(
    dev: DevServer, http: httpx.Client
) -> None:
    email_id = _send(http, dev, subject="Hi", html=f'<p class="x">Hello</p>{SCRIPT}')

    page = http.get(f"{dev.autosend_url}/emails/{email_id}").text

    [frame] = re.findall(r"<iframe[^>]*>", page)
    assert re.search(r"\ssandbox[\s>]", frame)
    assert "allow-scripts" not in frame
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame)
    assert srcdoc is not None
    assert html.unescape(srcdoc.group(1)) == f'<p class="x">Hello</p>{SCRIPT}'


def test_email_page_never_shows_a_script_unescaped(dev: DevServer, http: httpx.Client) -> None:
    email_id = _send(http, dev, subject=SCRIPT, html=SCRIPT, text=SCRIPT, name=SCRIPT)

    page = http.get(f"{dev.autosend_url}/emails/{email_id}").text

    assert "<script" not in page
    assert html.escape(SCRIPT) in _outside_srcdoc(page)  # the text part and the JSON body


def test_inbox_pages_forbid_scripts_by_policy(dev: DevServer, http: httpx.Client) -> None:
    response = http.get(dev.autosend_url + "/")

    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_unknown_email_page_is_404(dev: DevServer, http: httpx.Client) -> None:
    response = http.get(f"{dev.autosend_url}/emails/{SCRIPT}")

    assert response.status_code == 404
    assert "<script" not in response.text
