"""Signs a user in with MSAL for Python's auth-code flow, the way Microsoft's web-app samples
do. The browser part in between is the caller's: `initiate` prints MSAL's flow (with its
auth_uri); `complete` takes that flow and the redirect's query parameters, redeems the code,
then asks MSAL for a token again, which it gets with the refresh token. Prints one JSON
object; exits 0 whatever MSAL answers, so the caller asserts on the outcome.

usage: msal_auth_code.py initiate AUTHORITY CLIENT_ID CLIENT_SECRET CA_PEM REDIRECT_URI
       msal_auth_code.py complete AUTHORITY CLIENT_ID CLIENT_SECRET CA_PEM REDIRECT_URI FLOW AUTH_RESPONSE
"""
import json
import sys

import msal

mode, authority, client_id, secret, ca_pem, redirect_uri = sys.argv[1:7]

app = msal.ConfidentialClientApplication(
    client_id,
    client_credential=secret,
    authority=authority,
    # The emulator is not a Microsoft cloud: skip instance discovery, trust its CA.
    instance_discovery=False,
    verify=ca_pem,
)

if mode == "initiate":
    flow = app.initiate_auth_code_flow(scopes=[], redirect_uri=redirect_uri)
    print(json.dumps(flow))
else:
    flow = json.loads(sys.argv[7])
    auth_response = json.loads(sys.argv[8])
    token = app.acquire_token_by_auth_code_flow(flow, auth_response)
    out = {"msal_version": msal.__version__, "token": token}
    accounts = app.get_accounts()
    out["accounts"] = accounts
    if accounts:
        silent = app.acquire_token_silent_with_error(
            scopes=[], account=accounts[0], force_refresh=True
        )
        out["silent"] = silent
        out["silent_has_token"] = bool(silent and "access_token" in silent)
    print(json.dumps(out))
