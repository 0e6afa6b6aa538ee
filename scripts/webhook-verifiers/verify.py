"""Verifies creditd's deliveries with the official Standard Webhooks package (PyPI
`standardwebhooks`). Reads {"secret", "messages": [{"id", "timestamp", "signature", "body"}]}
on stdin; prints one JSON result per message: {"ok": true, "type": …} or {"ok": false, "error": …}."""
import json
import sys

from standardwebhooks.webhooks import Webhook

request = json.load(sys.stdin)
webhook = Webhook(request["secret"])
for message in request["messages"]:
    headers = {
        "webhook-id": message["id"],
        "webhook-timestamp": message["timestamp"],
        "webhook-signature": message["signature"],
    }
    try:
        payload = webhook.verify(message["body"], headers)
        print(json.dumps({"ok": True, "type": payload["type"]}))
    except Exception as e:  # any refusal is reported, not raised
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
