"""The sandbox's inbox pages. Everything shown comes from requests, so everything is escaped.

An email's HTML is shown in ``<iframe sandbox srcdoc="...">``: an empty sandbox attribute gives
the frame no scripts, no forms, no same-origin access, and the page's CSP blocks scripts as well.
"""

import json
from datetime import datetime
from html import escape

from .mailbox import ReceivedEmail

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; }
.warning { background: #fff3cd; padding: .5rem 1rem; border-radius: 4px; }
iframe { width: 100%; height: 28rem; border: 1px solid #ccc; }
pre { background: #f6f6f6; padding: 1rem; overflow: auto; white-space: pre-wrap; }
"""


def render_inbox(emails: list[ReceivedEmail]) -> str:
    """The list of received emails, newest first."""
    rows = "".join(_inbox_row(email) for email in reversed(emails))
    if not rows:
        rows = '<tr><td colspan="4">No email received yet.</td></tr>'
    table = (
        "<table><thead><tr><th>Received</th><th>To</th><th>Subject / template</th><th>Id</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    return _page("AutoSend sandbox inbox", f"<h1>AutoSend sandbox inbox</h1>{table}")


def render_email(email: ReceivedEmail) -> str:
    """One email: who and what, its HTML in a sandboxed frame, its text and its JSON body."""
    title = _subject_or_template(email)
    details = (
        "<table>"
        f"<tr><th>Id</th><td>{escape(email.id)}</td></tr>"
        f"<tr><th>Kind</th><td>{escape(email.kind)}</td></tr>"
        f"<tr><th>Received</th><td>{_time(email)}</td></tr>"
        f"<tr><th>From</th><td>{_address(email.payload.get('from'))}</td></tr>"
        f"<tr><th>To</th><td>{_recipients(email)}</td></tr>"
        f"<tr><th>Subject / template</th><td>{escape(title)}</td></tr>"
        "</table>"
    )
    sections = [
        '<p><a href="/">&larr; Inbox</a></p>',
        f"<h1>{escape(title)}</h1>",
        details,
        _html_section(email.html),
        _pre_section("Text", email.text),
        _pre_section("JSON body", json.dumps(email.payload, indent=2, ensure_ascii=False)),
    ]
    return _page(title, "".join(sections))


def render_not_found(email_id: str) -> str:
    return _page("Not found", f'<h1>No email {escape(email_id)}</h1><p><a href="/">Inbox</a></p>')


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        '<p class="warning">Development sandbox: nothing here was sent to anyone.</p>'
        f"{body}</body></html>"
    )


def _inbox_row(email: ReceivedEmail) -> str:
    link = f'<a href="/emails/{escape(email.id)}">{escape(email.id)}</a>'
    return (
        f"<tr><td>{_time(email)}</td><td>{_recipients(email)}</td>"
        f"<td>{escape(_subject_or_template(email))}</td><td>{link}</td></tr>"
    )


def _html_section(html: str | None) -> str:
    if not html:
        return ""
    # escape() with quote=True makes the HTML safe inside a double-quoted attribute.
    frame = f'<iframe sandbox srcdoc="{escape(html, quote=True)}" title="HTML part"></iframe>'
    return f"<h2>HTML</h2>{frame}"


def _pre_section(title: str, text: str | None) -> str:
    if not text:
        return ""
    return f"<h2>{escape(title)}</h2><pre>{escape(text)}</pre>"


def _subject_or_template(email: ReceivedEmail) -> str:
    if email.subject:
        return str(email.subject)
    return f"template {email.template_id}" if email.template_id else "(no subject)"


def _recipients(email: ReceivedEmail) -> str:
    return ", ".join(_address(recipient) for recipient in email.recipients)


def _address(address: object) -> str:
    if not isinstance(address, dict):
        return ""
    email = escape(str(address.get("email", "")))
    name = address.get("name")
    return f"{escape(str(name))} &lt;{email}&gt;" if name else email


def _time(email: ReceivedEmail) -> str:
    return escape(datetime.fromtimestamp(email.received_at).strftime("%Y-%m-%d %H:%M:%S"))
