"""The verification job done the way Microsoft's daemon samples do it: one
ConfidentialClientApplication per tenant, acquire_token_for_client, then Graph
GET /v1.0/organization, in a thread pool. Prints one JSON line.

usage: msal_verify.py BASE CLIENT_ID SECRET CA_PEM CONCURRENCY TENANTS_FILE
"""
import concurrent.futures
import json
import sys
import time

import msal
import requests
from requests.adapters import HTTPAdapter

base, client_id, secret, ca_pem, concurrency, tenants_file = sys.argv[1:7]
concurrency = int(concurrency)
with open(tenants_file) as f:
    tenants = [line.strip() for line in f if line.strip()]
scopes = ["https://graph.microsoft.com/.default"]

# Graph calls share one pooled session (kinder to MSAL than the samples' requests.get).
graph = requests.Session()
graph.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=concurrency))


def verify(tenant):
    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=f"{base}/{tenant}",
        instance_discovery=False,
        verify=ca_pem,
    )
    result = app.acquire_token_for_client(scopes=scopes)
    if "access_token" not in result:
        return False
    response = graph.get(
        f"{base}/v1.0/organization",
        headers={"Authorization": "Bearer " + result["access_token"]},
        verify=ca_pem,
        timeout=60,
    )
    return response.status_code == 200 and response.json()["value"][0]["id"] == tenant


started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
    results = list(pool.map(verify, tenants))
wall = time.monotonic() - started
print(json.dumps({"wall_seconds": wall, "ok": sum(results), "failed": len(results) - sum(results)}))
