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
# Two request values are not data a schema can describe, so the generator is taught where they
# come from (schemathesis's `before_call` hook; it re-validates the case after the edit):
# - a list's `cursor` is a position the same list handed out as `nextCursor` (opaque, signed by
#   nothing but its encoding; anything else is refused with 422 by design). A positive case's
#   cursor becomes one this list (and, for products, this sort) has issued in this run, or is left
#   out until the list has issued one.
# - an `Idempotency-Key` names one request: the same key with a different body is refused with
#   422 (draft-ietf-httpapi-idempotency-key-header). A positive case's key gets a suffix digesting
#   the request, so a new request carries a new key and a replayed one its old key, as a client's.
# - a Stripe event is signed by Stripe: a positive case's `Stripe-Signature` is the signature of
#   its body with the run's webhook secret, as Stripe would send it.
# - a range's end follows its start (`from`/`to`, `startsAt`/`endsAt`, `validFrom`/`validUntil`),
#   a rule between two members no JSON Schema keyword states: a positive case with both given in
#   the wrong order gets them swapped (and an empty range the end moved one step on: a day, a
#   second, or for a time of day a minute); so does a maximum its minimum (`minDays`/`maxDays`).
# - an analytics date range spans at most 366 days (DateRange, documented on its parameters): a
#   longer one in a positive case ends 366 days after its start.
# - a blog post is scheduled for a time to come ("must be in the future", documented on
#   `publishAt`): a positive case's past `publishAt` moves to a day from now. A schema has no
#   notion of now.
# - a tracked event happened lately (at most 5 minutes ahead, 30 days back, documented on
#   `timestamp`): a positive case's event time outside that window becomes now, and so does one
#   that is no date-time at all (`format: date-time` is only an annotation in JSON Schema 2020-12,
#   so the generator may send "" as a "valid" one).
#
# Configured by xtask through FUZZ_* environment variables; standard library only.

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
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
WEBHOOK_SECRET = os.environ.get("FUZZ_STRIPE_WEBHOOK_SECRET", "")
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


_cursors = {}
# Enough variety per list; bounded so a long run keeps little.
_CURSORS_PER_LIST = 16
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7E]{1,255}")


def _positive(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _list_key(case):
    # Product cursors carry their sort, which is relevance when `q` is given and no `sort` is.
    query = case.query if isinstance(case.query, dict) else {}
    return (case.operation.label, str(query.get("sort")), "q" in query)


def _digest(*parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@schemathesis.hook
def after_call(context, case, response):
    if response.status_code != 200 or "json" not in response.headers.get("content-type", [""])[0]:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    cursor = body.get("nextCursor") if isinstance(body, dict) else None
    if isinstance(cursor, str) and cursor:
        with _lock:
            issued = _cursors.setdefault(_list_key(case), [])
            if cursor not in issued:
                issued.append(cursor)
                del issued[:-_CURSORS_PER_LIST]


_RANGES = (("from", "to"), ("startsAt", "endsAt"), ("validFrom", "validUntil"))


def _instant(text):
    """`(value, one step, formatter)` for an ISO date, date-time or time, else `None`."""
    for kind, step in (
        (datetime.date, datetime.timedelta(days=1)),
        (datetime.datetime, datetime.timedelta(seconds=1)),
        (datetime.time, datetime.timedelta(minutes=1)),
    ):
        try:
            value = kind.fromisoformat(text)
        except (TypeError, ValueError):
            continue
        if kind is datetime.date and len(text) != 10:
            continue
        return value, step, kind
    return None


_BOUNDS = (("minDays", "maxDays"),)


def _order_ranges(members):
    if not isinstance(members, dict):
        return
    for low, high in _BOUNDS:
        a, b = members.get(low), members.get(high)
        if isinstance(a, int) and isinstance(b, int) and a > b:
            members[low], members[high] = b, a
    for start, end in _RANGES:
        a, b = members.get(start), members.get(end)
        if not (isinstance(a, str) and isinstance(b, str)):
            continue
        first, last = _instant(a), _instant(b)
        if first is None or last is None or first[2] is not last[2]:
            continue
        try:
            if first[0] > last[0]:
                members[start], members[end] = b, a
            elif first[0] == last[0]:
                _separate(members, start, end, first[0], first[1])
        except (TypeError, OverflowError):
            continue


def _separate(members, start, end, value, step):
    """An empty range made one `step` long: the end moved on, or (at the last time of a day)
    the start moved back."""
    if isinstance(value, datetime.time):
        day = datetime.date(2000, 1, 1)
        moment = datetime.datetime.combine(day, value)
        if (moment + step).date() == day:
            members[end] = (moment + step).time().isoformat()
        else:
            members[start] = (moment - step).time().isoformat()
        return
    members[end] = (value + step).isoformat().replace("+00:00", "Z")


_MAX_ANALYTICS_DAYS = 366


def _cap_analytics_range(case):
    query = case.query
    if not (isinstance(query, dict) and case.path.startswith("/v1/analytics/")):
        return
    first, last = _instant(query.get("from")), _instant(query.get("to"))
    if first is None or last is None or first[2] is not datetime.date or last[2] is not datetime.date:
        return
    try:
        if (last[0] - first[0]).days > _MAX_ANALYTICS_DAYS:
            query["to"] = (first[0] + datetime.timedelta(days=_MAX_ANALYTICS_DAYS)).isoformat()
    except (TypeError, OverflowError):
        return


def _track_lately(case):
    body = case.body
    if not (isinstance(body, dict) and case.path == "/v1/analytics/track"):
        return
    events = [body]
    for key in ("batch", "dataLayer"):
        if isinstance(body.get(key), list):
            events.extend(e for e in body[key] if isinstance(e, dict))
    now = datetime.datetime.now(datetime.timezone.utc)
    for event in events:
        when = event.get("timestamp")
        if not isinstance(when, str):
            continue
        parsed = _instant(when)
        if parsed is not None and parsed[2] is datetime.datetime:
            value = parsed[0] if parsed[0].tzinfo else parsed[0].replace(tzinfo=datetime.timezone.utc)
            if now - datetime.timedelta(days=29) <= value <= now + datetime.timedelta(minutes=4):
                continue
        event["timestamp"] = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _schedule_ahead(case):
    body = case.body
    if not (isinstance(body, dict) and case.path.endswith("/schedule")):
        return
    when = body.get("publishAt")
    parsed = _instant(when) if isinstance(when, str) else None
    if parsed is None or parsed[2] is not datetime.datetime:
        return
    now = datetime.datetime.now(datetime.timezone.utc)
    value = parsed[0] if parsed[0].tzinfo else parsed[0].replace(tzinfo=datetime.timezone.utc)
    if value <= now:
        body["publishAt"] = (now + datetime.timedelta(days=1)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _sign_stripe_event(case):
    # The bytes requests sends for a JSON body (`json.dumps` with its defaults).
    body = case.body
    payload = "" if not isinstance(body, (dict, list, str, int, float, bool)) else json.dumps(body, allow_nan=False)
    timestamp = str(int(time.time()))
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    case.headers = case.headers or {}
    for name in [n for n in case.headers if n.lower() == "stripe-signature"]:
        del case.headers[name]
    case.headers["Stripe-Signature"] = f"t={timestamp},v1={signature}"


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _positive(case):
        return
    if WEBHOOK_SECRET and case.path == "/v1/webhooks/stripe":
        _sign_stripe_event(case)
    _order_ranges(case.query)
    _order_ranges(case.body)
    _cap_analytics_range(case)
    _schedule_ahead(case)
    _track_lately(case)
    query = case.query
    if isinstance(query, dict) and "cursor" in query:
        with _lock:
            issued = list(_cursors.get(_list_key(case), ()))
        if issued:
            # Chosen from the generated value, so a seed replays the same choice.
            query["cursor"] = issued[int(_digest(query["cursor"]), 16) % len(issued)]
        else:
            del query["cursor"]
    headers = case.headers or {}
    for name in list(headers):
        key = headers[name]
        if name.lower() == "idempotency-key" and isinstance(key, str) and _IDEMPOTENCY_KEY.fullmatch(key):
            request = _digest(case.method, case.path, case.path_parameters, case.query, case.body)
            headers[name] = key[:222] + "." + request[:32]
