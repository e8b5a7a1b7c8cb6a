"""schemathesis hooks of scripts/fuzz-api."""

import re
import uuid

import schemathesis

# POST /v1/skills/import takes JSON Lines: send the generated text as it is.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

VALID_KEY = re.compile(r"[!-~]{1,200}")


@schemathesis.hook
def before_call(context, case, kwargs):
    """Makes every valid Idempotency-Key the fuzzer sends unique.

    Hypothesis reuses small values ("0") across different requests, which the API rightly
    refuses (422: the key was used for another request): a true answer, not a finding.
    Invalid keys are left as they are, to be refused.
    """
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.fullmatch(value):
            headers[name] = str(uuid.uuid4())


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops "unexpected header or query parameter accepted": like most HTTP APIs, Trellis
    ignores headers and query parameters it does not know (proxies add headers of their own).
    Unknown body fields are still refused and still checked."""
    message = f"{getattr(failure, 'title', '')} {getattr(failure, 'message', '')}"
    ignored = (
        "in header - object with unexpected properties",
        "in query - object with unexpected properties",
    )
    return not any(text in message for text in ignored)
