"""Default ports and the public development credentials the devserver accepts and signs with.

The QStash values are the fixed test credentials of Upstash's own development server
(`npx @upstash/qstash-cli dev`), so a project can switch between that server and this one without
touching its settings. None of them is a secret.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_QSTASH_PORT = 8080
DEFAULT_AUTOSEND_PORT = 8081

DEV_QSTASH_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="  # noqa: S105
DEV_CURRENT_SIGNING_KEY = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
DEV_NEXT_SIGNING_KEY = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"

# Any key with this prefix is accepted by the AutoSend sandbox unless an exact key is configured.
AUTOSEND_KEY_PREFIX = "AS_"
DEFAULT_RATE_LIMIT = 2
DEFAULT_DELIVERY_TIMEOUT = 15.0
