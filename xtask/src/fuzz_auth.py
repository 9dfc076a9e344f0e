# schemathesis hook of `cargo xtask fuzz-api`: the signed-in user's bearer token, kept alive.
#
# The fuzzer calls every operation, logout and account deletion included, so the run's own
# session can end half way. schemathesis then asks this provider again (a 401 invalidates the
# cached token and the request is replayed once): if the token still works it is kept (the 401
# was about something else); otherwise the user signs in again as a client would. The customer
# registers again if the fuzzer deleted the account; the administrator answers the two-factor
# challenge with a spare recovery code, then with the authenticator code of a time step not
# used yet (codes are single use, so this may wait for the next 30 s step).
#
# Configured by xtask through FUZZ_* environment variables; standard library only.

import base64
import hashlib
import hmac
import json
import os
import struct
import threading
import time
import urllib.error
import urllib.request

import schemathesis

BASE = os.environ["FUZZ_BASE_URL"]
EMAIL = os.environ["FUZZ_EMAIL"]
PASSWORD = os.environ["FUZZ_PASSWORD"]
SECRET = os.environ.get("FUZZ_TOTP_SECRET", "")
_lock = threading.Lock()
_state = {
    "token": os.environ["FUZZ_TOKEN"],
    "recovery": [c for c in os.environ.get("FUZZ_RECOVERY_CODES", "").split(",") if c],
    "last_step": int(os.environ.get("FUZZ_TOTP_LAST_STEP", "0")),
    "sign_ins": 0,
}


def _call(method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, None


def _totp(step):
    key = base64.b32decode(SECRET + "=" * (-len(SECRET) % 8), casefold=True)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def _second_factor():
    if _state["recovery"]:
        return _state["recovery"].pop(0)
    while int(time.time()) // 30 <= _state["last_step"]:
        time.sleep(1)
    _state["last_step"] = int(time.time()) // 30
    return _totp(_state["last_step"])


def _sign_in():
    credentials = {"email": EMAIL, "password": PASSWORD}
    status, body = _call("POST", "/v1/auth/login", credentials)
    if status == 401 and not SECRET:
        _call(
            "POST",
            "/v1/auth/register",
            {"email": EMAIL, "password": PASSWORD, "firstName": "Fuzz", "lastName": "Customer"},
        )
        status, body = _call("POST", "/v1/auth/login", credentials)
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"signing in again as {EMAIL} answered {status}")
    if body.get("challengeId"):
        status, body = _call(
            "POST",
            "/v1/auth/2fa/verify",
            {"challengeId": body["challengeId"], "code": _second_factor()},
        )
        if status != 200 or not isinstance(body, dict):
            raise RuntimeError(f"the second factor for {EMAIL} answered {status}")
    _state["sign_ins"] += 1
    return body["accessToken"]


@schemathesis.auth(refresh_interval=3600, retry_on=[401])
class Session:
    def get(self, case, context):
        with _lock:
            if _call("GET", "/v1/auth/me", token=_state["token"])[0] != 200:
                _state["token"] = _sign_in()
            return _state["token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = "Bearer " + data
