#!/usr/bin/env python3
"""Demo data for development plans, through the public API only (stdlib, no packages).

Idempotent: the employee reports to the manager; resources for the data analyst occupation's
ESCO skills are published once; the manager reviews the employee once; the employee gets one
IDP targeting the data analyst role. Prints the plan's status and top recommendations.

Usage: demo-development.py BASE_URL PASSWORD
"""
import json
import sys
import time
import urllib.error
import urllib.request

BASE, PASSWORD = sys.argv[1], sys.argv[2]


def call(method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, (json.loads(raw) if raw else None)


def login(email):
    status, body = call("POST", "/v1/auth/login", body={"email": email, "password": PASSWORD})
    assert status == 200, (email, status, body)
    return body["access_token"]


admin, manager, employee = (login(f"{r}@demo.trellis") for r in ("admin", "manager", "employee"))
manager_me = call("GET", "/v1/users/me", manager)[1]
employee_me = call("GET", "/v1/users/me", employee)[1]
if employee_me["manager_id"] != manager_me["id"]:
    call("POST", f"/v1/users/{employee_me['id']}/manager", admin, {"manager_id": manager_me["id"]})

if call("GET", "/v1/idps", employee)[1]:
    print("[trellis] demo plans already exist")
    sys.exit(0)

occupation = call("GET", "/v1/occupations?q=data%20analyst&limit=1", employee)[1][0]
skills = occupation["skills"]
kinds = ["course", "video", "book", "article", "project"]
for i, skill in enumerate(skills[:18]):
    status, body = call("POST", "/v1/resources", admin, {
        "title": f"{skill['label'].capitalize()}: a practical introduction",
        "description": f"Hands-on material on {skill['label']} for aspiring data analysts.",
        "kind": kinds[i % len(kinds)],
        "duration_minutes": 30 + 15 * (i % 8),
        "difficulty": 1 + i % 4,
        "skills": [{"skill_id": skill["skill_id"], "level": 3 + i % 2}],
    })
    if status != 201:
        print(f"[trellis] resource for {skill['label']!r}: {status} {body}")
call("POST", "/v1/reviews", manager, {
    "employee_id": employee_me["id"],
    "period": "2026-H2",
    "ratings": [{"skill_id": s["skill_id"], "level": 1 + i % 3} for i, s in enumerate(skills[:5])],
    "feedback": "Strong analytical instincts; build up the tooling.",
})
status, created = call("POST", "/v1/idps", employee, {
    "employee_id": employee_me["id"],
    "title": "Grow into a data analyst role",
    "target_role": occupation["uri"],
})
assert status == 202, (status, created)
# The recommender embeds the whole ESCO catalog on its first start: allow it a while.
deadline = time.time() + 180
while True:
    status, plan = call("GET", f"/v1/idps/{created['id']}?min_version=2", employee)
    if plan.get("status") in ("active", "failed") or time.time() > deadline:
        break
print(f"[trellis] demo IDP {created['id']}: {plan.get('status')}, "
      f"{len(plan.get('gaps', []))} gaps, {len(plan.get('recommendations', []))} recommendations")
for r in plan.get("recommendations", [])[:3]:
    print(f"[trellis]   {r['score']:.3f}  {r.get('title')}  ({r['reason']})")
