"""Queue-to-notified latency and curriculum time of cohort batches (scripts/bench-cohorts).

Against a running `trellis serve` (api, projections, matcher, curriculum): one organization,
twelve learners, a catalog skill with a resource. Each round creates a pool of trios that
forms at twelve learners, opens every learner's live stream (GET /v1/me/events), lets the
twelve join, and measures, per learner, the time from the twelfth join's 202 to their
`GroupsFormed` message, and, per group, the time from `GroupOpened` to `CurriculumGenerated`
in the log (commit times). Prints medians and percentiles. Standard library only.
"""

import http.client
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

BASE = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
PASSWORD = "correct horse battery staple"


def call(method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
        return json.loads(text) if text else None


def login(email):
    return call("POST", "/v1/auth/login", body={"email": email, "password": PASSWORD})["access_token"]


def listen(token, heard, ready):
    """Records the monotonic time this learner's stream carries GroupsFormed."""
    url = urlparse(BASE)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    connection.request("GET", "/v1/me/events", headers={"authorization": "Bearer " + token})
    response = connection.getresponse()
    ready.release()
    for raw in response:
        if raw.startswith(b"event: GroupsFormed"):
            heard.append(time.monotonic())
            break
    connection.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    stamp = int(time.time())
    admin_email = f"bench-{stamp}@example.com"
    call("POST", "/v1/organizations", body={"name": f"Cohort bench {stamp}", "admin": {
        "email": admin_email, "password": PASSWORD, "display_name": "Bench Admin"}})
    admin = login(admin_email)
    skill = call("POST", "/v1/skills", admin, {"name": "Rust programming"})["id"]
    call("POST", "/v1/resources", admin, {
        "title": "Rust from zero", "kind": "course", "duration_minutes": 120, "difficulty": 1,
        "skills": [{"skill_id": skill, "level": 2}]})
    learners = []
    for i in range(12):
        email = f"learner-{i}-{stamp}@example.com"
        call("POST", "/v1/users", admin, {"email": email, "password": PASSWORD,
                                          "display_name": f"Learner {i}", "roles": ["learner"]})
        learners.append(login(email))
    notified, curricula = [], []
    for round_ in range(ROUNDS):
        pool = call("POST", "/v1/cohorts/pools", admin, {
            "name": f"Round {round_}", "group_size": {"min": 3, "max": 3},
            "criteria": [{"attribute": "goals", "mode": "similar", "weight": 1.0}],
            "batch": {"min_queue": 12, "max_wait_seconds": 3600}})["id"]
        heard, ready, threads = [], threading.Semaphore(0), []
        for token in learners:
            thread = threading.Thread(target=listen, args=(token, heard, ready), daemon=True)
            thread.start()
            threads.append(thread)
        for _ in learners:
            ready.acquire()
        time.sleep(0.2)  # every stream is subscribed to the live feed
        for i, token in enumerate(learners):
            call("POST", f"/v1/cohorts/pools/{pool}/queue", token, {
                "skills": [{"skill_id": skill, "level": 1 + i % 4}],
                "goals": "Get better at Rust programming", "timezone": "Europe/Lisbon",
                "availability": [{"day": "tue", "start": "18:00", "end": "20:00"}]})
        queued = time.monotonic()
        for thread in threads:
            thread.join(timeout=30)
        if len(heard) != len(learners):
            sys.exit(f"round {round_}: {len(heard)} of 12 learners were told")
        notified.extend((t - queued) * 1000 for t in heard)
        # The live feed follows the log; the read model may apply the batch a moment later.
        for _ in range(300):
            groups = call("GET", f"/v1/cohorts/pools/{pool}/groups", admin)
            if len(groups) == 4:
                break
            time.sleep(0.05)
        for group in groups:
            for _ in range(300):
                try:
                    stream = call("GET", f"/v1/audit/streams/cohort_group-{group['id']}", admin)
                except urllib.error.HTTPError as error:
                    if error.code != 404:  # not opened yet
                        raise
                    stream = {"events": []}
                times = {e["event_type"]: e["recorded_at"] for e in stream["events"]}
                if "CurriculumGenerated" in times:
                    break
                time.sleep(0.05)
            else:
                sys.exit(f"group {group['id']}: no curriculum")
            opened = times["GroupOpened"]
            generated = times["CurriculumGenerated"]
            curricula.append(seconds(generated) * 1000 - seconds(opened) * 1000)
    print(f"queue-to-notified over {ROUNDS} batches of 12 ({len(notified)} learners): "
          f"p50 {statistics.median(notified):.0f} ms, p95 {percentile(notified, 95):.0f} ms, "
          f"p99 {percentile(notified, 99):.0f} ms, max {max(notified):.0f} ms")
    print(f"curriculum per group ({len(curricula)} groups, GroupOpened to CurriculumGenerated "
          f"commit): p50 {statistics.median(curricula):.0f} ms, p95 {percentile(curricula, 95):.0f} ms, "
          f"max {max(curricula):.0f} ms")


def seconds(rfc3339):
    """Seconds since the epoch of an RFC 3339 time with a fraction (microseconds kept)."""
    from datetime import datetime
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
