"""An outside consumer of Trellis's product topics, as another team would write one.

It uses only public, well-kept clients: kafka-python to read every topic with the given prefix
from the beginning, the CloudEvents SDK to parse each record (binary content mode), and
jsonschema to validate each event's data against the schema file its `ce_type` names:
`trellis.<context>.<Type>.v<N>` -> `events/<context>/<Type>.v<N>.json`.

Prints one JSON report on stdout:
    {"records": N, "by_topic": {...}, "by_type": {...}, "problems": [...]}
and exits 1 when any record is not a valid product event (wrong topic for its context, no
schema file, data that does not validate, not a CloudEvent), or when fewer than --expect
records arrive before --timeout.

Usage:
    python outside_consumer.py --brokers HOST:PORT --prefix trellis. --events DIR \
        [--expect N] [--timeout SECONDS]
"""

import argparse
import collections
import json
import pathlib
import sys
import time

import jsonschema
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from kafka import KafkaConsumer


def product_topics(consumer: KafkaConsumer, prefix: str) -> list[str]:
    """`<prefix><context>` topics; dead-letter topics (`<prefix>dlq.*`) are the platform's own
    and not part of the product contract."""
    return sorted(
        t
        for t in consumer.topics()
        if t.startswith(prefix) and not t[len(prefix):].startswith("dlq.")
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--prefix", default="trellis.")
    parser.add_argument("--events", required=True, help="the repository's events/ folder")
    parser.add_argument("--expect", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    events = pathlib.Path(args.events)

    # librdkafka's mock cluster answers ApiVersions v3 in a form kafka-python cannot decode;
    # pinning the protocol version works (FACTS.md, "Outside clients against the dev broker").
    consumer = KafkaConsumer(
        bootstrap_servers=args.brokers,
        api_version=(2, 0, 0),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    topics = product_topics(consumer, args.prefix)
    consumer.subscribe(topics)

    schemas: dict[pathlib.Path, dict] = {}
    problems: list[str] = []
    by_topic: collections.Counter = collections.Counter()
    by_type: collections.Counter = collections.Counter()
    seen = 0
    deadline = time.monotonic() + args.timeout
    while seen < args.expect and time.monotonic() < deadline:
        # New topics appear as the relay creates them.
        fresh = product_topics(consumer, args.prefix)
        if fresh != topics:
            topics = fresh
            consumer.subscribe(topics)
        for record in consumer:
            seen += 1
            by_topic[record.topic] += 1
            where = f"{record.topic}@{record.partition}:{record.offset}"
            headers = {k: v for k, v in record.headers}
            try:
                event = from_binary_event(
                    KafkaMessage(headers=headers, key=record.key, value=record.value)
                )
            except Exception as error:  # noqa: BLE001 - any parse failure is a finding
                problems.append(f"{where}: not a CloudEvent: {error}")
                continue
            ce_type = event.get_type()
            parts = ce_type.split(".")
            if len(parts) != 4 or parts[0] != "trellis" or not parts[3].startswith("v"):
                problems.append(f"{where}: ce_type {ce_type!r} is not trellis.<context>.<Type>.v<N>")
                continue
            _, context, event_type, version = parts
            by_type[ce_type] += 1
            if record.topic != f"{args.prefix}{context}":
                problems.append(f"{where}: {ce_type} on topic {record.topic}")
            schema_path = events / context / f"{event_type}.{version}.json"
            if not schema_path.exists():
                problems.append(f"{where}: {ce_type} has no schema at {schema_path}")
                continue
            if schema_path not in schemas:
                schemas[schema_path] = json.loads(schema_path.read_text())
            try:
                jsonschema.validate(event.get_data(), schemas[schema_path])
            except jsonschema.ValidationError as error:
                problems.append(f"{where}: {ce_type} does not validate: {error.message}")
            if seen >= args.expect:
                break
    consumer.close()
    if seen < args.expect:
        problems.append(f"only {seen} of {args.expect} records arrived in {args.timeout} s")
    print(
        json.dumps(
            {
                "records": seen,
                "by_topic": dict(by_topic),
                "by_type": dict(by_type),
                "problems": problems,
            }
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
