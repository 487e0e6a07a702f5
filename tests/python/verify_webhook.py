"""Verifies one webhook delivery with the Standard Webhooks reference library, as a
receiver would. Prints one JSON object; exits 0 whether or not the signature verifies, so
the caller asserts on the outcome.

usage: verify_webhook.py SECRET WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE BODY
"""
import json
import sys

import standardwebhooks
from standardwebhooks.webhooks import WebhookVerificationError

secret, msg_id, timestamp, signature, body = sys.argv[1:6]
headers = {
    "webhook-id": msg_id,
    "webhook-timestamp": timestamp,
    "webhook-signature": signature,
}
try:
    payload = standardwebhooks.Webhook(secret).verify(body, headers)
    print(json.dumps({"verified": True, "payload": payload}))
except WebhookVerificationError as e:
    print(json.dumps({"verified": False, "error": str(e)}))
