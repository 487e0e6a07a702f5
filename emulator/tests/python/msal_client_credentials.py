"""Gets an app-only token from an authority with MSAL for Python, the way Microsoft's daemon
samples do, then calls Graph with it. Prints one JSON object; exits 0 whatever MSAL answers,
so the caller asserts on the outcome.

usage: msal_client_credentials.py AUTHORITY CLIENT_ID CLIENT_SECRET CA_PEM GRAPH_BASE
"""
import json
import sys

import msal
import requests

authority, client_id, secret, ca_pem, graph = sys.argv[1:6]
scopes = ["https://graph.microsoft.com/.default"]

app = msal.ConfidentialClientApplication(
    client_id,
    client_credential=secret,
    authority=authority,
    # The emulator is not a Microsoft cloud: skip instance discovery, trust its CA.
    instance_discovery=False,
    verify=ca_pem,
)
first = app.acquire_token_for_client(scopes=scopes)
second = app.acquire_token_for_client(scopes=scopes)
out = {"msal_version": msal.__version__, "first": first, "second_is_same": False}
if "access_token" in first:
    out["second_is_same"] = second.get("access_token") == first["access_token"]
    response = requests.get(
        f"{graph}/v1.0/organization",
        headers={"Authorization": "Bearer " + first["access_token"]},
        verify=ca_pem,
        timeout=10,
    )
    out["graph_status"] = response.status_code
    out["graph_body"] = response.json()
print(json.dumps(out))
