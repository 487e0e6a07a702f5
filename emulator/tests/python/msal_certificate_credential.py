"""Gets app-only tokens with a certificate credential through MSAL for Python, in both of the
forms its docs show: the SHA-1 thumbprint alone (MSAL signs RS256 and sends `x5t`) and the
public certificate (MSAL signs PS256 and sends `x5t#S256`). Prints one JSON object; exits 0
whatever MSAL answers, so the caller asserts on the outcome.

usage: msal_certificate_credential.py AUTHORITY CLIENT_ID KEY_PEM CERT_PEM CA_PEM
"""
import base64
import hashlib
import json
import sys

import msal

authority, client_id, key_path, cert_path, ca_pem = sys.argv[1:6]
key = open(key_path).read()
cert = open(cert_path).read()
der = base64.b64decode("".join(l for l in cert.splitlines() if not l.startswith("-----")))

out = {"msal_version": msal.__version__}
for name, credential in [
    ("thumbprint", {"private_key": key, "thumbprint": hashlib.sha1(der).hexdigest()}),
    ("public_certificate", {"private_key": key, "public_certificate": cert}),
]:
    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=authority,
        instance_discovery=False,
        verify=ca_pem,
    )
    out[name] = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
print(json.dumps(out))
