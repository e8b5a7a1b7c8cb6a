#!/usr/bin/env python3
"""Security regression probe of a running Trellis (scripts/security-probe starts one).

Attacks the HTTP API from outside, as an anonymous client and as malicious insiders
(admins and users of other organizations, a thief holding a session's tokens), one check per
finding of the hardening issue (ADR 0009, ADR 0010, docs/security.md). Python 3 standard
library only.

Prints `PASS name` or `FAIL name: why` per check, then `N passed, M failed`; exits 1 if any
check failed. Check names start with the number of the finding they cover.

Environment (scripts/security-probe sets all of it):
  TRELLIS_PROBE_URL        the API (default http://127.0.0.1:18181)
  TRELLIS_JWT_SECRET       the deployment's signing key (to mint tokens a thief with the key
                           could mint) -- required
  TRELLIS_OPS_TOKEN        the operator's token -- required
  TRELLIS_MAX_CONNECTIONS_PER_IP, TRELLIS_HEADER_READ_TIMEOUT_SECONDS,
  TRELLIS_IDLE_TIMEOUT_SECONDS, TRELLIS_LIVE_STREAMS_PER_USER, TRELLIS_LIVE_RECHECK_SECONDS,
  TRELLIS_EXPENSIVE_LIMIT_USER, TRELLIS_WRITE_LIMIT_USER
                           the limits the server runs with (the checks adapt to them)
  TRELLIS_PROBE_EXTRA_RESULTS  a file of `PASS|FAIL<TAB>name` lines of checks the wrapper ran,
                           counted in the final line
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import sys
import threading
import time
import urllib.parse
import uuid

URL = urllib.parse.urlsplit(os.environ.get("TRELLIS_PROBE_URL", "http://127.0.0.1:18181"))
HOST, PORT = URL.hostname, URL.port or 80
JWT_SECRET = os.environ.get("TRELLIS_JWT_SECRET", "")
OPS_TOKEN = os.environ.get("TRELLIS_OPS_TOKEN", "")
OLD_DEFAULT_KEY = "trellis-development-secret-change-me-0123456789"
PASSWORD = "correct horse battery staple"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env_int(name, default=None):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


PER_IP = env_int("TRELLIS_MAX_CONNECTIONS_PER_IP", 128)
HEADER_TIMEOUT = env_int("TRELLIS_HEADER_READ_TIMEOUT_SECONDS", 10)
IDLE_TIMEOUT = env_int("TRELLIS_IDLE_TIMEOUT_SECONDS", 60)
STREAMS_PER_USER = env_int("TRELLIS_LIVE_STREAMS_PER_USER", 5)
RECHECK = env_int("TRELLIS_LIVE_RECHECK_SECONDS", 5)
EXPENSIVE_LIMIT = env_int("TRELLIS_EXPENSIVE_LIMIT_USER", 60)
WRITE_LIMIT = env_int("TRELLIS_WRITE_LIMIT_USER")
RUN = secrets.token_hex(4)  # makes every address and name of this run unique


# --- results ----------------------------------------------------------------------------------

class Failed(Exception):
    """A check's expectation did not hold."""


PASSED, FAILED = [], []


def expect(condition, why):
    if not condition:
        raise Failed(why)


class check:
    """`with check("name"):` records PASS, or FAIL with the exception's message."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _tb):
        if kind is not None and not issubclass(kind, Exception):
            return False  # Ctrl-C and exits are not check failures
        if kind is None:
            PASSED.append(self.name)
            print(f"PASS {self.name}", flush=True)
        else:
            why = str(error) if isinstance(error, Failed) else f"{kind.__name__}: {error}"
            FAILED.append(self.name)
            print(f"FAIL {self.name}: {why}", flush=True)
        return True


def not_implemented(what):
    raise Failed(f"not implemented ({what})")


# --- HTTP ---------------------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status, self.headers, self.body, self.elapsed = status, headers, body, elapsed

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def fields(self):
        body = self.json()
        if not isinstance(body, dict):
            return []
        return [e.get("field") for e in body.get("errors") or [] if isinstance(e, dict)]

    def is_problem(self):
        return self.headers.get("content-type", "").startswith("application/problem+json")

    def __str__(self):
        text = self.body.decode("utf-8", "replace").replace("\n", " ")
        return f"{self.status} {text[:240]}"


def request(method, path, body=None, token=None, headers=None, source=None, raw=None,
            content_type=None, timeout=30):
    conn = http.client.HTTPConnection(
        HOST, PORT, timeout=timeout, source_address=(source, 0) if source else None)
    sent = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["content-type"] = "application/json"
    if raw is not None:
        data = raw if isinstance(raw, bytes) else raw.encode()
        sent["content-type"] = content_type or "application/json"
    if token:
        sent["authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    start = time.monotonic()
    try:
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        payload = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload,
                        time.monotonic() - start)
    finally:
        conn.close()


def expect_status(resp, status, what):
    expect(resp.status == status, f"{what}: expected {status}, got {resp}")


def expect_problem(resp, status, what, field=None):
    expect_status(resp, status, what)
    expect(resp.is_problem(), f"{what}: content-type {resp.headers.get('content-type')!r}, "
                              "not application/problem+json")
    if field is not None:
        expect(field in resp.fields(), f"{what}: the problem names {resp.fields()}, not {field!r}")


_signup_address = [0]


def signup_source():
    """Sign-ups are limited per client address: spread them over 127.0.1.x."""
    _signup_address[0] += 1
    return f"127.0.1.{_signup_address[0] % 250 + 1}"


def sign_up(name, email=None, password=PASSWORD):
    email = email or f"{name.lower().replace(' ', '-')}-{RUN}@example.com"
    resp = request("POST", "/v1/organizations", {
        "name": f"{name} {RUN}",
        "admin": {"email": email, "password": password, "display_name": name},
    }, source=signup_source())
    expect_status(resp, 201, f"sign-up of {name}")
    body = resp.json()
    return body["organization_id"], body["admin_user_id"], email


def login(email, password=PASSWORD, organization_id=None, source=None):
    body = {"email": email, "password": password}
    if organization_id:
        body["organization_id"] = organization_id
    return request("POST", "/v1/auth/login", body, source=source)


def tokens(email, password=PASSWORD, organization_id=None):
    resp = login(email, password, organization_id)
    expect_status(resp, 200, f"login of {email}")
    body = resp.json()
    return body["access_token"], body["refresh_token"]


def create_user(admin, name, roles=("learner",), email=None):
    email = email or f"{name}-{RUN}@example.com"
    resp = request("POST", "/v1/users", {
        "email": email, "password": PASSWORD, "display_name": name, "roles": list(roles),
    }, token=admin)
    expect_status(resp, 201, f"creating user {name}")
    return resp.json()["id"], email


def define_skill(admin, name, **extra):
    return request("POST", "/v1/skills", {"name": name, **extra}, token=admin)


def resource_body(skill_id, **overrides):
    body = {
        "title": f"Probe resource {RUN}", "description": "A resource.",
        "url": "https://example.com/course", "kind": "course", "duration_minutes": 60,
        "difficulty": 2, "skills": [{"skill_id": skill_id, "level": 2}],
    }
    body.update(overrides)
    return body


# --- JWT ------------------------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def mint(claims, key, alg="HS256"):
    header = b64url(json.dumps({"typ": "JWT", "alg": alg}).encode())
    body = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{body}".encode()
    if alg == "none":
        return f"{header}.{body}."
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


# --- raw sockets ------------------------------------------------------------------------------------

def raw_connect(source, timeout=10):
    return socket.create_connection((HOST, PORT), timeout=timeout, source_address=(source, 0))


def wait_closed(sock, limit):
    """Seconds until the server closes `sock` (reads and discards), or None after `limit`."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def read_http_response(sock, limit=5):
    """Reads one response with a content-length body; returns the bytes read."""
    sock.settimeout(limit)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


# --- 1. forgeable tokens ----------------------------------------------------------------------------

def forged_tokens():
    _, _, email = sign_up("Probe Tokens")
    real, _ = tokens(email)
    claims = claims_of(real)
    now = int(time.time())
    base = dict(claims, iat=now, exp=now + 300)

    with check("1-control-token-minted-with-the-real-key-accepted"):
        expect(JWT_SECRET, "TRELLIS_JWT_SECRET is not set for the probe")
        resp = request("GET", "/v1/users/me", token=mint(base, JWT_SECRET))
        expect_status(resp, 200, "a well-formed token signed with the deployment's key "
                                 "(the probe's minting is wrong otherwise)")
    with check("1-token-signed-with-the-old-public-default-key-refused"):
        resp = request("GET", "/v1/users/me", token=mint(base, OLD_DEFAULT_KEY))
        expect_problem(resp, 401, "forged admin token (old default key)")
        resp = request("POST", "/v1/users", {
            "email": f"forged-{RUN}@example.com", "password": PASSWORD,
            "display_name": "Forged", "roles": ["admin"]}, token=mint(base, OLD_DEFAULT_KEY))
        expect_problem(resp, 401, "forged admin token creating an admin")
    with check("1-year-long-token-with-the-real-key-refused"):
        resp = request("GET", "/v1/users/me",
                       token=mint(dict(claims, iat=now, exp=now + 365 * 24 * 3600), JWT_SECRET))
        expect_problem(resp, 401, "token with exp - iat of a year")
    with check("1-token-issued-in-the-future-refused"):
        resp = request("GET", "/v1/users/me",
                       token=mint(dict(claims, iat=now + 3600, exp=now + 3900), JWT_SECRET))
        expect_problem(resp, 401, "token with iat an hour ahead")
    with check("1-alg-none-token-refused"):
        resp = request("GET", "/v1/users/me", token=mint(base, None, alg="none"))
        expect_problem(resp, 401, "alg none token")
    return real


# --- 2. input limits, relay progress, parked records -----------------------------------------------

def input_limits(admin):
    base = define_skill(admin, f"Probe base skill {RUN}")
    expect_status(base, 201, "defining an ordinary skill")
    skill_id = base.json()["id"]

    with check("2-skill-description-over-limit-422"):
        # The documented limit is 5,000 characters (crates/development/src/limits.rs).
        resp = define_skill(admin, f"Long {RUN}", description="x" * 60_000)
        expect_problem(resp, 422, "skill description of 60,000 characters", "description")
    with check("2-resource-description-over-limit-422"):
        # Documented limit 10,000; this one is ~900 KB, just under the 1 MiB body limit.
        resp = request("POST", "/v1/resources",
                       resource_body(skill_id, description="y" * 900_000), token=admin)
        expect_problem(resp, 422, "resource description of 900,000 characters", "description")
    with check("2-resource-url-javascript-422"):
        resp = request("POST", "/v1/resources",
                       resource_body(skill_id, url="javascript:alert(1)"), token=admin)
        expect_problem(resp, 422, "javascript: URL", "url")
        resp = request("POST", "/v1/resources",
                       resource_body(skill_id, url="data:text/html,<script>alert(1)</script>"),
                       token=admin)
        expect_problem(resp, 422, "data: URL", "url")
    with check("2-name-with-bidi-override-422"):
        resp = define_skill(admin, f"Invoice\u202Etxt.exe {RUN}")
        expect_problem(resp, 422, "skill name with U+202E", "name")
        resp = request("POST", "/v1/resources",
                       resource_body(skill_id, title="Safe \u202Egnp.exe"), token=admin)
        expect_problem(resp, 422, "resource title with U+202E", "title")
    with check("2-import-line-over-limit-422"):
        line = json.dumps({"uri": f"http://data.europa.eu/esco/skill/{uuid.uuid4()}",
                           "label": f"Oversized {RUN}", "alt_labels": [],
                           "skill_type": "knowledge", "description": "z" * 200_000})
        resp = request("POST", "/v1/skills/import", raw=line + "\n",
                       content_type="application/x-ndjson", token=admin)
        expect_problem(resp, 422, "import line with a 200,000-character description")
        expect(any(str(f).startswith("body") for f in resp.fields()),
               f"the problem names {resp.fields()}, not the body line")
    with check("2-ordinary-write-visible-after-refusals"):
        # Nothing refused above may stall the relay or the projections: an ordinary write
        # still reaches the read model (store -> relay -> Kafka -> projection) in seconds.
        name = f"Probe visible skill {RUN}"
        resp = define_skill(admin, name, description="An ordinary description.")
        expect_status(resp, 201, "ordinary skill")
        deadline = time.monotonic() + 10
        found = False
        while time.monotonic() < deadline and not found:
            search = request("GET", "/v1/skills?" + urllib.parse.urlencode({"q": name}),
                             token=admin)
            expect_status(search, 200, "search")
            found = any(row.get("name") == name for row in search.json() or [])
            if not found:
                time.sleep(0.25)
        expect(found, "the skill did not appear in GET /v1/skills within 10 s")
        resp = request("POST", "/v1/resources", resource_body(skill_id), token=admin)
        expect_status(resp, 201, "ordinary resource")
    with check("2-ops-parked-operator-only"):
        resp = request("GET", "/v1/ops/parked", token=OPS_TOKEN)
        if resp.status == 404:
            not_implemented("GET /v1/ops/parked answers 404 to the operator")
        expect_status(resp, 200, "operator")
        body = resp.json() or {}
        expect("records" in body and "counts" in body, f"operator: unexpected body {resp}")
        expect((body["counts"] or {}).get("parked", 0) == 0,
               f"the relay parked records during the probe: {body['counts']}")
        expect_problem(request("GET", "/v1/ops/parked", token=admin), 401, "admin token")
        expect_problem(request("GET", "/v1/ops/parked"), 401, "no token")
        resp = request("POST", f"/v1/ops/parked/{uuid.uuid4()}/retry", {}, token=admin)
        expect_problem(resp, 401, "admin asking for a retry")
    return skill_id


# --- 3. Idempotency-Key ----------------------------------------------------------------------------

def registered_count(admin):
    resp = request("GET", "/v1/audit/events?type=UserRegistered&limit=1000", token=admin)
    expect_status(resp, 200, "audit events")
    return len(resp.json()["events"])


def idempotency():
    _, _, email_a = sign_up("Probe Idempotent")
    admin_a, _ = tokens(email_a)
    _, _, email_b = sign_up("Probe Other Tenant")
    admin_b, _ = tokens(email_b)
    key = f"create-ada-{RUN}"

    def user(name):
        return {"email": f"{name}-{RUN}@example.com", "password": PASSWORD,
                "display_name": name, "roles": ["learner"]}

    def send(token, body, key=key):
        return request("POST", "/v1/users", body, token=token, headers={"Idempotency-Key": key})

    first = send(admin_a, user("ada"))
    expect_status(first, 201, "first request")
    with check("3-idempotent-replay-same-status-and-body"):
        again = send(admin_a, user("ada"))
        expect_status(again, 201, "replay")
        expect(again.headers.get("idempotent-replayed") == "true",
               f"replay without `idempotent-replayed: true` (headers {again.headers})")
        expect(again.json() == first.json(), f"replayed body {again} differs from {first}")
    with check("3-idempotent-replay-creates-nothing"):
        count = registered_count(admin_a)
        expect(count == 2, f"{count} UserRegistered events in the organization, expected 2 "
                           "(the admin and ada once)")
    with check("3-same-key-other-body-422"):
        resp = send(admin_a, user("bob"))
        expect_problem(resp, 422, "same key, another body", "Idempotency-Key")
    with check("3-another-users-same-key-is-independent"):
        # Another admin of the same organization...
        _, admin2_email = create_user(admin_a, "second-admin", roles=("admin",))
        admin2, _ = tokens(admin2_email)
        resp = send(admin2, user("dave"))
        expect_status(resp, 201, "another user of the organization, same key, own body")
        expect("idempotent-replayed" not in resp.headers, "answered as a replay")
        # ...and another organization's admin, with the very same request.
        resp = send(admin_b, user("ada"))
        expect_status(resp, 201, "another organization, same key and body")
        expect("idempotent-replayed" not in resp.headers, "answered as a replay")
        expect(resp.json()["id"] != first.json()["id"],
               "another tenant received the first tenant's answer")
    with check("3-empty-and-overlong-keys-422"):
        for bad, what in (("", "empty key"), ("k" * 201, "201-character key")):
            resp = send(admin_a, user("carol"), key=bad)
            expect_problem(resp, 422, what, "Idempotency-Key")


# --- 4. concurrent registrations -----------------------------------------------------------------

def concurrent_registrations():
    with check("4-concurrent-registrations-exactly-one-201"):
        _, _, email = sign_up("Probe Race")
        admin, _ = tokens(email)
        twins = min(4, EXPENSIVE_LIMIT)
        barrier = threading.Barrier(twins)
        statuses = [None] * twins
        address = f"twin-{RUN}@example.com"

        def register(i):
            barrier.wait()
            try:
                statuses[i] = request("POST", "/v1/users", {
                    "email": address, "password": PASSWORD,
                    "display_name": f"Twin {i}", "roles": ["learner"]}, token=admin).status
            except OSError as error:
                statuses[i] = repr(error)

        threads = [threading.Thread(target=register, args=(i,)) for i in range(twins)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        expect(sorted(statuses, key=str) == [201] + [409] * (twins - 1),
               f"statuses {statuses}, expected one 201 and {twins - 1} 409")
        # The winner is a real user (no ghost): it can log in.
        expect_status(login(address), 200, "the registered twin logging in")


# --- 5. no lock-out button -----------------------------------------------------------------------

def lockout():
    _, admin_id, email = sign_up("Probe Lockout")
    expect_status(login(email, source="127.0.0.1"), 200, "the owner's first login")
    statuses = []
    for _ in range(20):
        statuses.append(login(email, "wrong password 123", source="127.0.0.2").status)
    with check("5-attacker-failures-are-slowed-down"):
        expect(set(statuses) <= {401, 429}, f"unexpected statuses {statuses}")
        expect(429 in statuses, f"20 wrong passwords were never refused: {statuses}")
    with check("5-owner-not-locked-out-by-failures-elsewhere"):
        resp = login(email, source="127.0.0.1")
        expect_status(resp, 200, "the owner's login from the client that logged in before")
    return admin_id, email


# --- 6. sessions ------------------------------------------------------------------------------------

def sessions():
    _, _, email = sign_up("Probe Sessions")
    with check("6-login-response-not-cacheable"):
        resp = login(email)
        expect_status(resp, 200, "login")
        expect("no-store" in resp.headers.get("cache-control", ""),
               f"login cache-control {resp.headers.get('cache-control')!r}")
        stolen_access, stolen_refresh = resp.json()["access_token"], resp.json()["refresh_token"]
    mine, my_refresh = tokens(email)
    resp = request("POST", "/v1/users/me/password", {
        "current_password": PASSWORD, "new_password": f"another good passphrase {RUN}"},
        token=mine)
    expect_status(resp, 200, "password change")
    with check("6-password-change-revokes-other-refresh-token"):
        resp = request("POST", "/v1/auth/refresh", {"refresh_token": stolen_refresh})
        expect_problem(resp, 401, "the other session's refresh token")
    with check("6-password-change-revokes-other-access-token"):
        resp = request("GET", "/v1/users/me", token=stolen_access)
        expect_problem(resp, 401, "the other session's access token")
    with check("6-password-change-keeps-own-session"):
        expect_status(request("GET", "/v1/users/me", token=mine), 200,
                      "the changing session's access token")
    with check("6-refresh-response-not-cacheable"):
        resp = request("POST", "/v1/auth/refresh", {"refresh_token": my_refresh})
        expect_status(resp, 200, "refresh of the changing session")
        expect("no-store" in resp.headers.get("cache-control", ""),
               f"refresh cache-control {resp.headers.get('cache-control')!r}")
    with check("6-deactivation-ends-the-users-access-at-once"):
        user_id, user_email = create_user(mine, "leaving-insider")
        access, refresh = tokens(user_email)
        expect_status(request("GET", "/v1/users/me", token=access), 200, "before deactivation")
        resp = request("POST", f"/v1/users/{user_id}/deactivate", {}, token=mine)
        expect_status(resp, 200, "deactivation")
        expect_problem(request("GET", "/v1/users/me", token=access), 401,
                       "the deactivated user's access token")
        expect_problem(request("POST", "/v1/auth/refresh", {"refresh_token": refresh}), 401,
                       "the deactivated user's refresh token")


# --- 7. slow and greedy clients ------------------------------------------------------------------

def connections():
    with check("7-slowloris-cut-off"):
        sock = raw_connect("127.0.0.60")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\n")
        start = time.monotonic()
        limit = HEADER_TIMEOUT + 2
        cut = None
        sock.settimeout(0.01)
        for i in range(int((limit + 4) / 0.4)):
            time.sleep(0.4)
            try:
                sock.sendall(f"x-slow-{i}: 1\r\n".encode())
                sock.recv(256)  # b"" (closed) or an error answer: cut off either way
                cut = time.monotonic() - start
                break
            except socket.timeout:
                continue
            except OSError:
                cut = time.monotonic() - start
                break
        sock.close()
        expect(cut is not None, f"still connected after {limit + 4:.0f} s of trickled headers")
        expect(cut <= limit, f"cut off after {cut:.1f} s, more than header timeout + 2 s")
    with check("7-idle-connection-closed"):
        sock = raw_connect("127.0.0.61")
        took = wait_closed(sock, IDLE_TIMEOUT + 6)
        sock.close()
        expect(took is not None, f"a silent connection was still open after {IDLE_TIMEOUT + 6} s")
        expect(took <= IDLE_TIMEOUT + 2, f"closed after {took:.1f} s (idle timeout {IDLE_TIMEOUT} s)")
        # A kept-alive connection that goes quiet after a request is closed too.
        sock = raw_connect("127.0.0.61")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n")
        answer = read_http_response(sock)
        expect(answer.startswith(b"HTTP/1.1 200"), f"healthz answered {answer[:80]!r}")
        took = wait_closed(sock, IDLE_TIMEOUT + 6)
        sock.close()
        expect(took is not None and took <= IDLE_TIMEOUT + 2,
               f"a quiet kept-alive connection was closed after {took} s")
    with check("7-connections-over-per-address-cap-get-problem-503"):
        held = []
        try:
            for _ in range(PER_IP):
                held.append(raw_connect("127.0.0.62"))
            time.sleep(0.3)
            extra = raw_connect("127.0.0.62")
            held.append(extra)
            extra.settimeout(5)
            answer = b""
            try:
                while True:
                    chunk = extra.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            except OSError:
                pass
            text = answer.decode("latin-1")
            expect(text.startswith("HTTP/1.1 503"),
                   f"connection {PER_IP + 1} from one address got {text[:120]!r}")
            expect("application/problem+json" in text.lower(), f"not problem+json: {text[:300]!r}")
            # Another address is not affected meanwhile.
            resp = request("GET", "/healthz", source="127.0.0.63")
            expect_status(resp, 200, "another address while one is at its cap")
        finally:
            for sock in held:
                sock.close()
    with check("7-unknown-method-405-problem"):
        resp = request("DELETE", "/v1/users/me")
        expect_problem(resp, 405, "DELETE /v1/users/me")


# --- 8. skills import ---------------------------------------------------------------------------

def esco_lines():
    with open(os.path.join(ROOT, "data", "esco", "skills.jsonl"), encoding="utf-8") as f:
        return [line for line in f.read().splitlines() if line.strip()]


def max_import_lines():
    """MAX_IMPORT_LINES from crates/development-app/src/http/skills.rs (2,000 when not found)."""
    try:
        with open(os.path.join(ROOT, "crates", "development-app", "src", "http", "skills.rs")) as f:
            for line in f:
                if "const MAX_IMPORT_LINES" in line:
                    return int(line.split("=")[1].strip().rstrip(";").replace("_", ""))
    except (OSError, ValueError, IndexError):
        pass
    return 2000


def imports():
    _, _, email = sign_up("Probe Import")
    admin, _ = tokens(email)
    lines = esco_lines()

    def send(body):
        return request("POST", "/v1/skills/import", raw="\n".join(body) + "\n",
                       content_type="application/x-ndjson", token=admin, timeout=120)

    with check("8-import-over-line-cap-refused"):
        cap = max_import_lines()
        body = [lines[i % len(lines)] for i in range(cap + 1)]
        resp = send(body)
        expect(resp.status in (413, 422), f"{cap + 1} lines: expected 413 or 422, got {resp}")
        expect(resp.is_problem(), "not problem+json")
    with check("8-import-charged-by-size"):
        # Fill the expensive budget but one unit with one import, then show that a 2-unit
        # import no longer fits while a 1-unit one does: the first spent limit-1 units.
        per_unit = 100
        units = EXPENSIVE_LIMIT - 1
        expect(2 <= units and (units + 3) * per_unit <= len(lines),
               f"the probe needs TRELLIS_EXPENSIVE_LIMIT_USER between 3 and "
               f"{len(lines) // per_unit - 2} (it is {EXPENSIVE_LIMIT})")
        big = lines[:units * per_unit]
        two = lines[units * per_unit:(units + 2) * per_unit]
        one = lines[(units + 2) * per_unit:(units + 3) * per_unit]
        resp = send(big)
        expect_status(resp, 202, f"import of {len(big)} lines")
        resp = send(two)
        if resp.status == 202:
            raise Failed(f"after a {len(big)}-line import, a {len(two)}-line import still "
                         f"passed: imports are not charged by size "
                         f"(budget {EXPENSIVE_LIMIT} units)")
        expect_problem(resp, 429, f"{len(two)}-line import after the big one")
        expect("retry-after" in resp.headers, "429 without Retry-After")
        resp = send(one)
        expect_status(resp, 202, f"{len(one)}-line import filling the last unit")


# --- 9. addresses per organization -----------------------------------------------------------------

def addresses():
    org_a, _, email = sign_up("Probe Squatter")
    with check("9-same-address-in-another-organization-201"):
        resp = request("POST", "/v1/organizations", {
            "name": f"Probe Victim {RUN}",
            "admin": {"email": email, "password": PASSWORD, "display_name": "Victim"}},
            source=signup_source())
        expect_status(resp, 201, "the second organization's sign-up with a taken address")
        org_b = resp.json()["organization_id"]
        expect(set(resp.json()) == {"organization_id", "admin_user_id"},
               f"the answer differs from any sign-up's: {resp}")
    with check("9-ambiguous-login-422-naming-organization-id"):
        resp = login(email)
        expect_problem(resp, 422, "login without organization_id", "organization_id")
    admins = {}
    with check("9-login-with-organization-id-200"):
        for org in (org_a, org_b):
            resp = login(email, organization_id=org)
            expect_status(resp, 200, f"login into {org}")
            token = resp.json()["access_token"]
            me = request("GET", "/v1/users/me", token=token).json() or {}
            expect((me.get("organization") or {}).get("id") == org,
                   f"logged into {me.get('organization')} instead of {org}")
            admins[org] = token
    with check("9-registration-in-another-organization-reveals-nothing"):
        expect(org_a in admins and org_b in admins, "no admin tokens (see above)")
        # An address registered in organization A is free in B: no 409 to enumerate with.
        _, taken = create_user(admins[org_a], "shared")
        resp = request("POST", "/v1/users", {"email": taken, "password": PASSWORD,
                                            "display_name": "Shared", "roles": ["learner"]},
                       token=admins[org_b])
        expect_status(resp, 201, "the same address in another organization")
    with check("9-deactivated-address-registers-again"):
        expect(org_a in admins, "no admin token (see above)")
        admin = admins[org_a]
        leaver, leaver_email = create_user(admin, "leaver")
        body = {"email": leaver_email, "password": PASSWORD, "display_name": "Again",
                "roles": ["learner"]}
        expect_problem(request("POST", "/v1/users", body, token=admin), 409,
                       "the same address again while its user is active")
        resp = request("POST", f"/v1/users/{leaver}/deactivate", {}, token=admin)
        expect_status(resp, 200, "deactivation")
        expect_status(request("POST", "/v1/users", body, token=admin), 201,
                      "the address of a deactivated user")


# --- 10. lower-severity findings ------------------------------------------------------------------

class Stream:
    """An open `GET /v1/me/events`, read on a thread until the server ends it."""

    def __init__(self, token):
        self.conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
        self.conn.request("GET", "/v1/me/events", headers={
            "authorization": f"Bearer {token}", "accept": "text/event-stream"})
        self.opened = time.monotonic()
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.ended = None
        if self.status == 200:
            threading.Thread(target=self._drain, daemon=True).start()
        else:
            self.body = self.resp.read()

    def _drain(self):
        try:
            while self.resp.read1(1024):
                pass
        except Exception:  # noqa: BLE001 -- closed, reset or cut mid-chunk: ended all the same
            pass
        self.ended = time.monotonic()

    def close(self):
        try:
            self.conn.sock and self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def live_streams(email):
    access, refresh = tokens(email)
    streams = []
    try:
        with check("10-live-streams-capped-per-user-429"):
            for i in range(STREAMS_PER_USER):
                streams.append(Stream(access))
                expect(streams[-1].status == 200, f"stream {i + 1}: {streams[-1].status}")
            over = Stream(access)
            expect(over.status == 429, f"stream {STREAMS_PER_USER + 1}: expected 429, got "
                                       f"{over.status} {getattr(over, 'body', b'')[:200]!r}")
        with check("10-live-stream-ends-after-logout"):
            expect(streams and streams[0].status == 200, "no open stream (see above)")
            first = streams[0]
            for other in streams[1:]:
                other.close()
            time.sleep(0.2)
            expect(first.ended is None, "the stream ended before the logout")
            resp = request("POST", "/v1/auth/logout", {"refresh_token": refresh})
            expect_status(resp, 204, "logout")
            logged_out = time.monotonic()
            deadline = logged_out + RECHECK + 2
            while first.ended is None and time.monotonic() < deadline:
                time.sleep(0.05)
            expect(first.ended is not None,
                   f"the stream was still open {RECHECK + 2} s after the logout")
            after = first.ended - logged_out
            open_for = first.ended - first.opened
            expect(open_for < IDLE_TIMEOUT - 0.2,
                   f"the stream ended {after:.1f} s after the logout, only by the idle timeout")
    finally:
        for stream in streams:
            stream.close()


def lower_severity(admin1, skill_id, lockout_admin, lockout_admin_id, stream_email):
    live_streams(stream_email)

    with check("10-min-version-wait-unknown-plan-404-fast"):
        resp = request("GET", f"/v1/idps/{uuid.uuid4()}?min_version=5", token=admin1)
        expect_problem(resp, 404, "unknown plan with min_version")
        expect(resp.elapsed < 1.0, f"took {resp.elapsed:.2f} s")

    with check("10-common-passwords-refused"):
        for weak in ("password1234", "aaaaaaaaaaa1"):
            resp = request("POST", "/v1/organizations", {
                "name": f"Probe Weak {RUN}",
                "admin": {"email": f"weak-{RUN}@example.com", "password": weak,
                          "display_name": "Weak"}}, source=signup_source())
            expect_problem(resp, 422, f"password {weak!r}", "admin.password")

    with check("10-last-admin-cannot-demote-themselves"):
        resp = request("POST", f"/v1/users/{lockout_admin_id}/roles", {"roles": ["learner"]},
                       token=lockout_admin)
        expect_problem(resp, 409, "the only admin giving up the admin role")

    with check("10-metrics-operator-only"):
        expect_problem(request("GET", "/metrics", token=admin1), 401, "/metrics, admin token")
        expect_problem(request("GET", "/metrics"), 401, "/metrics, no token")
        resp = request("GET", "/metrics", token=OPS_TOKEN)
        expect_status(resp, 200, "/metrics, operator token")
        expect(b"# TYPE" in resp.body or b"trellis_" in resp.body, "no Prometheus text")
    with check("10-ops-projections-operator-only"):
        expect_problem(request("GET", "/v1/ops/projections", token=admin1), 401,
                       "/v1/ops/projections, admin token")
        resp = request("GET", "/v1/ops/projections", token=OPS_TOKEN)
        expect_status(resp, 200, "/v1/ops/projections, operator token")

    rid = None
    with check("10-unchanged-rerating-appends-nothing"):
        resource = request("POST", "/v1/resources", resource_body(
            skill_id, title=f"Rated resource {RUN}"), token=admin1)
        expect_status(resource, 201, "publishing a resource")
        rid = resource.json()["id"]
        path = f"/v1/resources/{rid}/ratings"
        first = request("POST", path, {"rating": 4}, token=admin1)
        expect(first.status in (200, 201), f"first rating: {first}")
        again = request("POST", path, {"rating": 4}, token=admin1)
        expect(again.status in (200, 201), f"same rating again: {again}")
        expect(again.json()["version"] == first.json()["version"],
               f"an unchanged rating moved the version {first.json()['version']} -> "
               f"{again.json()['version']}")
        audit = request("GET", f"/v1/audit/streams/resource-{rid}", token=admin1)
        expect_status(audit, 200, "audit of the resource stream")
        types = [e["event_type"] for e in audit.json()["events"]]
        expect(types.count("ResourceRated") == 1, f"events of the resource: {types}")
        changed = request("POST", path, {"rating": 5}, token=admin1)
        expect(changed.json()["version"] == first.json()["version"] + 1,
               f"a changed rating did not append: {changed}")

    with check("10-write-budget-429"):
        if WRITE_LIMIT is None:
            not_implemented("no TRELLIS_WRITE_LIMIT_USER in crates/edge/src/config.rs")
        expect(rid, "no resource to rate (see above)")
        _, rater_email = create_user(admin1, "rater")
        rater, _ = tokens(rater_email)
        path = f"/v1/resources/{rid}/ratings"
        statuses = [request("POST", path, {"rating": 3}, token=rater).status
                    for _ in range(WRITE_LIMIT)]
        expect(all(s in (200, 201) for s in statuses),
               f"the first {WRITE_LIMIT} writes were not all accepted: {statuses}")
        resp = request("POST", path, {"rating": 3}, token=rater)
        expect_problem(resp, 429, f"write {WRITE_LIMIT + 1} within a minute")
        expect("retry-after" in resp.headers, "429 without Retry-After")

    client_id = f"probe-request-{RUN}-{secrets.token_hex(4)}"
    with check("10-client-request-id-not-echoed"):
        resp = request("POST", "/v1/skills", {"name": f"Correlated skill {RUN}"},
                       token=admin1, headers={"x-request-id": client_id})
        expect_status(resp, 201, "skill with a client x-request-id")
        echoed = resp.headers.get("x-request-id", "")
        expect(echoed != client_id, "the client's x-request-id was echoed as the response's")
        try:
            uuid.UUID(echoed)
        except ValueError:
            raise Failed(f"the response's x-request-id {echoed!r} is not a server-made UUID")
    with check("10-client-request-id-in-audit-metadata"):
        resp = request("GET", "/v1/audit/events?type=SkillDefined&limit=1000", token=admin1)
        expect_status(resp, 200, "audit events")
        hits = [e for e in resp.json()["events"]
                if (e.get("metadata") or {}).get("request_id") == client_id]
        expect(len(hits) == 1, f"{len(hits)} SkillDefined events carry request_id {client_id}")
        metadata = hits[0]["metadata"]
        expect(client_id not in (metadata.get("correlation_id"), metadata.get("trace_id")),
               f"the client's id became a correlation id: {metadata}")

    with check("10-duplicate-json-key-422"):
        resp = request("POST", "/v1/auth/login",
                       raw='{"email": "a@example.com", "password": "x", "password": "y"}')
        expect_problem(resp, 422, "login body with password twice", "password")


# --- main --------------------------------------------------------------------------------------------

def step(name, fn, *args):
    """Runs a group of checks; a failure outside any check fails `<name>-setup`."""
    try:
        return fn(*args)
    except Exception as error:  # noqa: BLE001 -- reported as a failed check
        with check(f"{name}-setup"):
            raise error
        return None


def wrapper_results():
    """(passed, failed) of the checks scripts/security-probe ran itself."""
    passed = failed = 0
    extra = os.environ.get("TRELLIS_PROBE_EXTRA_RESULTS")
    if extra and os.path.exists(extra):
        with open(extra, encoding="utf-8") as f:
            for line in f:
                verdict = line.split("\t", 1)[0]
                passed += verdict == "PASS"
                failed += verdict == "FAIL"
    return passed, failed


def watchdog(seconds):
    """Ends a probe that hangs (a server that stopped answering) with a failure."""
    def expire():
        print(f"FAIL probe-finished-in-time: still running after {seconds} s", flush=True)
        extra_passed, extra_failed = wrapper_results()
        print(f"{len(PASSED) + extra_passed} passed, {len(FAILED) + extra_failed + 1} failed",
              flush=True)
        os._exit(1)
    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def main():
    start = time.monotonic()
    watchdog(env_int("TRELLIS_PROBE_TIMEOUT_SECONDS", 300))
    extra_passed, extra_failed = wrapper_results()
    if not JWT_SECRET or not OPS_TOKEN:
        with check("0-probe-configuration"):
            raise Failed("TRELLIS_JWT_SECRET and TRELLIS_OPS_TOKEN must be set "
                         "(scripts/security-probe sets them)")
        print(f"{extra_passed} passed, {extra_failed + 1} failed", flush=True)
        return 1

    admin1 = step("1", forged_tokens)
    skill_id = step("2", input_limits, admin1) if admin1 else None
    step("3", idempotency)
    step("4", concurrent_registrations)
    lock = step("5", lockout)
    step("6", sessions)
    step("7", connections)
    step("8", imports)
    step("9", addresses)

    def ten():
        expect(admin1 and skill_id, "the organization of checks 1-2 is missing")
        lockout_admin = lockout_admin_id = None
        if lock:
            lockout_admin_id, lockout_email = lock
            lockout_admin, _ = tokens(lockout_email)
        _, _, stream_email = sign_up("Probe Streams")
        lower_severity(admin1, skill_id, lockout_admin, lockout_admin_id, stream_email)
    step("10", ten)

    passed = len(PASSED) + extra_passed
    failed = len(FAILED) + extra_failed
    print(f"probe took {time.monotonic() - start:.0f} s", file=sys.stderr)
    if failed and os.environ.get("TRELLIS_PROBE_SERVER_LOG"):
        print(f"the server's log: {os.environ['TRELLIS_PROBE_SERVER_LOG']}", file=sys.stderr)
    sys.stderr.flush()
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
