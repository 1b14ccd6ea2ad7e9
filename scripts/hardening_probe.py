#!/usr/bin/env python3
"""Black-box probe of issue #11's HTTP-visible items against a running orrery-local (start it with
ORRERY_ADMIN_KEY set). The integration suite holds the same items; this probe is what showed
each of them failing on the build before the fix (0 of 13 passed there, 13 of 13 after).
Usage: scripts/hardening_probe.py BASE_URL ADMIN_KEY   (prints one line per item: PASS/FAIL and what was seen)."""
import concurrent.futures
import json
import sys
import urllib.error
import urllib.request

BASE, ADMIN = sys.argv[1], sys.argv[2]


def call(method, path, key=None, body=None, raw=None, headers=None, auth_header=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", auth_header or f"Bearer {key}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def js(b):
    try:
        return json.loads(b)
    except Exception:
        return None


results = []


def check(item, ok, seen):
    results.append((item, ok, seen))
    print(f"{'PASS' if ok else 'FAIL'}  item {item}: {seen}", flush=True)


s, _, b = call("POST", "/v1/admin/accounts", ADMIN, {"name": "Probe", "tier": "premium"})
acct = js(b)
key = acct["api_key"]["key"]
live_id = acct["api_key"]["id"]

# 1: a test key holding only `keys` rotates the live all-scope key?
s, _, b = call("POST", "/v1/api-keys", key, {"name": "narrow", "scopes": ["keys"], "mode": "test"})
narrow = js(b)["key"]
s, _, b = call("POST", f"/v1/api-keys/{live_id}/rotate", narrow)
check(1, s == 403, f"narrow test key rotating the live key -> {s}")

# 11 (mode default): a test key creating a key without mode
s, _, b = call("POST", "/v1/api-keys", narrow, {"name": "child"})
check("11 mode", s == 201, f"test key creating a key without mode -> {s}")

# 2: 30 concurrent registrations
def register(n):
    return call("POST", "/v1/webhooks", key, {"url": f"https://hooks{n}.example.com/x"})[0]
with concurrent.futures.ThreadPoolExecutor(30) as pool:
    statuses = list(pool.map(register, range(30)))
check(2, statuses.count(201) == 20, f"30 concurrent POST /v1/webhooks -> {statuses.count(201)} created")

# 3: a replayed save costs a unit / a mismatching replay publishes (quota visible here)
chart = {"datetime": "1990-05-17T14:30", "timezone": "Europe/London", "latitude": 51.5, "longitude": -0.1}
s1, h1, _ = call("POST", "/v1/charts/saved", key, chart, headers={"idempotency-key": "p-1"})
s2, h2, _ = call("POST", "/v1/charts/saved", key, chart, headers={"idempotency-key": "p-1"})
u1, u2 = h1.get("x-ratelimit-used"), h2.get("x-ratelimit-used")
check(3, s2 == 200 and u1 == u2, f"replay {s1}->{s2}, x-ratelimit-used {u1} then {u2}")

# 9: trailing data
s, _, b = call("POST", "/v1/api-keys", key, raw=b'{"name":"ok"} garbage')
check(9, s == 400, f'{{"name":"ok"}} garbage -> {s}')

# 10: SVG with U+FFFE in the name
s, _, b = call("POST", "/v1/charts?format=svg", key, dict(chart, name="Ada\ufffe"))
try:
    import xml.dom.minidom
    xml.dom.minidom.parseString(b)
    wellformed = True
except Exception:
    wellformed = False
check(10, s == 200 and wellformed, f"name with U+FFFE -> {s}, well-formed XML: {wellformed}")

# 11: Bearer case
s, _, _ = call("GET", "/v1/api-keys", key, auth_header=f"BEARER {key}")
check("11 bearer", s == 200, f"BEARER key -> {s}")
# 11: 414 / 431
s, h, b = call("GET", "/v1/api-keys?cursor=" + "a" * 20000, key)
check("11 414", s == 414 and "problem+json" in h.get("content-type", ""), f"20 KB URI -> {s} {h.get('content-type')} {len(b)} bytes")
s, h, b = call("GET", "/v1/api-keys", key, headers={"x-padding": "p" * 500000})
check("11 431", s == 431 and "problem+json" in h.get("content-type", ""), f"500 KB header -> {s} {h.get('content-type')} {len(b)} bytes")
# 11: echo cap
s, _, b = call("POST", "/v1/charts", key, dict(chart, timezone="Z" * 200000))
check("11 echo", s == 422 and len(b) < 2000, f"200 KB timezone -> {s}, {len(b)} bytes")
# 11: agreeing timezone
s, _, b = call("POST", "/v1/charts", key, {"datetime": "1990-05-17T13:30:00Z", "timezone": "UTC", "latitude": 51.5, "longitude": -0.1})
check("11 tz", s == 200, f'"…Z" with timezone UTC -> {s}')
# 11: forged cursor
import base64
forged = base64.urlsafe_b64encode(json.dumps({"pk": f"ACCT#{acct['account']['id']}", "sk": "KEY#zzzz"}).encode()).decode().rstrip("=")
s, _, b = call("GET", f"/v1/api-keys?cursor={forged}", key)
check("11 cursor", s == 400, f"forged readable cursor -> {s}")
# 11: polar message for equal
s, _, b = call("POST", "/v1/charts", key, dict(chart, latitude=90, house_system="equal"))
msg = json.dumps(js(b))
check("11 polar", "use morinus" in msg and "at this date" not in msg, f"equal at 90°: {msg[:160]}")
print(f"{sum(ok for _, ok, _ in results)} passed, {sum(not ok for _, ok, _ in results)} failed")
