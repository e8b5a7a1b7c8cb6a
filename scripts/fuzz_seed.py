"""Seeds the scratch API of scripts/fuzz-api so the fuzzer reaches more than 404s and 422s.

Signs up an organization, logs its admin in, and makes one of each thing the API reads (a
skill, an employee reporting to the admin, a resource, a plan, a review, a declared skill).
Writes the ids to fuzz dictionaries (libFuzzer format) that scripts/fuzz-api.toml binds to
path, query and body parameters, and prints the admin's access token.

Usage: python3 scripts/fuzz_seed.py http://127.0.0.1:18080 .trellis/fuzz-dict
"""

import json
import os
import sys
import urllib.request

BASE, OUT = sys.argv[1], sys.argv[2]
PASSWORD = "correct horse battery staple"


def call(method, path, body=None, token=None):
    request = urllib.request.Request(BASE + path, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(request, data, timeout=30) as response:
        return json.loads(response.read() or b"null")


signed_up = call(
    "POST",
    "/v1/organizations",
    {"name": "Fuzz", "admin": {"email": "fuzz@example.com", "password": PASSWORD, "display_name": "Fuzz"}},
)
admin, organization = signed_up["admin_user_id"], signed_up["organization_id"]
token = call("POST", "/v1/auth/login", {"email": "fuzz@example.com", "password": PASSWORD})["access_token"]
skill = call("POST", "/v1/skills", {"name": "Fuzzing", "aliases": ["Property testing"]}, token)["id"]
employee = call(
    "POST",
    "/v1/users",
    {
        "email": "employee@example.com",
        "password": PASSWORD,
        "display_name": "Employee",
        "roles": ["employee"],
        "manager_id": admin,
    },
    token,
)["id"]
resource = call(
    "POST",
    "/v1/resources",
    {
        "title": "Fuzzing in practice",
        "url": "https://example.com/fuzzing",
        "kind": "course",
        "duration_minutes": 60,
        "difficulty": 2,
        "skills": [{"skill_id": skill, "level": 3}],
    },
    token,
)["id"]
plan = call(
    "POST",
    "/v1/idps",
    {"employee_id": employee, "title": "Learn fuzzing", "target_skills": [{"skill_id": skill, "target_level": 4}]},
    token,
)["id"]
review = call(
    "POST",
    "/v1/reviews",
    {"employee_id": employee, "period": "2026-H1", "ratings": [{"skill_id": skill, "level": 2}]},
    token,
)["id"]
call("POST", "/v1/users/me/skills", {"skill_id": skill, "level": 2}, token)

dictionaries = {
    # Anything a path `{id}` may name.
    "ids": [admin, employee, skill, resource, plan],
    "users": [admin, employee],
    "skills": [skill],
    "resources": [resource],
    "streams": [
        f"user-{admin}",
        f"user-{employee}",
        f"organization-{organization}",
        f"skill-{skill}",
        f"resource-{resource}",
        f"idp-{plan}",
        f"review-{review}",
        f"skill_profile-{admin}",
    ],
}
os.makedirs(OUT, exist_ok=True)
for name, values in dictionaries.items():
    with open(os.path.join(OUT, f"{name}.dict"), "w", encoding="utf-8") as file:
        file.writelines(f'"{value}"\n' for value in values)
print(token)
