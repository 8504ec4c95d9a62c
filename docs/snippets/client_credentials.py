"""A token from Latch with requests-oauthlib, then its introspection.

Run `latch serve --dev` first; ISSUER, CLIENT_ID and CLIENT_SECRET
default to its demo client. Needs requests-oauthlib (Debian:
python3-requests-oauthlib; pip: requests-oauthlib).
"""
import os

# oauthlib refuses every http:// URL with "InsecureTransportError: OAuth 2
# MUST utilize https". `latch serve --dev` serves http://127.0.0.1:8080, so
# allow it in development only; never set this against a real server.
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from oauthlib.oauth2 import BackendApplicationClient  # noqa: E402
from requests_oauthlib import OAuth2Session  # noqa: E402

issuer = os.environ.get("ISSUER", "http://127.0.0.1:8080")
client_id = os.environ.get("CLIENT_ID", "demo-client")
client_secret = os.environ.get("CLIENT_SECRET", "demo-secret")

meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
session = OAuth2Session(client=BackendApplicationClient(client_id=client_id), scope=["read"])
# The scope is sent only when given here too; without it Latch grants none
# (a client_credentials client gets only the scopes it asks for).
token = session.fetch_token(meta["token_endpoint"], client_id=client_id, client_secret=client_secret,
                            scope=["read"])

info = requests.post(meta["introspection_endpoint"], data={"token": token["access_token"]},
                     auth=(client_id, client_secret), timeout=10).json()
print("active:", info["active"], "scope:", info["scope"])
