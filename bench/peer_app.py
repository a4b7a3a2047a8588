"""The Quix Streams peer: the same `ratio_down` rule as Forewarn's, as a Quix application.

Runs in its own interpreter (`.venv-peer`, which has quixstreams; see bench/peer.py), so it
imports nothing of Forewarn's. Prints one `PEER-RESULT {json}` line when done.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

THRESHOLD, CLEAR_THRESHOLD, MIN_DEVICES = 0.3, 0.1, 5  # as the rules bench/detector.py seeds
RESULT_MARK = "PEER-RESULT "


def _worker(
    bootstrap: str,
    topic: str,
    output: str,
    messages: int,
    state_dir: str,
    group: str,
    changelog: bool,
) -> dict[str, Any]:
    from quixstreams import Application, State

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        state_dir=state_dir,
        producer_extra_config={"enable.idempotence": False},
        consumer_extra_config={"session.timeout.ms": 6000},
        use_changelog_topics=changelog,
        loglevel="WARNING",
    )
    source = app.topic(topic, key_deserializer="str", value_deserializer="json")
    sink = app.topic(output, key_serializer="str", value_serializer="json")

    processed = 0
    first = last = 0.0

    def rule(event: dict[str, Any], state: State[str, Any]) -> dict[str, Any] | None:
        """One node's `ratio_down` for the event's metric; the state is scoped by the key."""
        nonlocal processed, first, last
        processed += 1
        if processed == 1:
            first = time.perf_counter()
        if processed >= messages:
            last = time.perf_counter()
            app.stop()
        metric, device, ts = event["metric"], event["device_id"], event["ts"]
        is_down = event["value"] == 0
        # One state entry per (node, metric): its devices' latest readings and the outage flag.
        scope = state.get(metric) or {"devices": {}, "down": 0, "open": False}
        devices = scope["devices"]
        reading = [ts, is_down]
        previous = devices.get(device)
        # Newest reading wins; at equal times, down wins (as Forewarn's RatioSignal).
        if previous is not None and previous >= reading:
            return None
        down = scope["down"] - (previous[1] if previous is not None else 0) + is_down
        devices[device] = reading
        seen, is_open = len(devices), scope["open"]
        ratio = down / seen
        emitted: dict[str, Any] | None = None
        if not is_open and seen >= MIN_DEVICES and ratio > THRESHOLD:
            is_open = True
            emitted = {"state": "open", "metric": metric, "ts": ts, "down": down, "seen": seen}
        elif is_open and ratio < CLEAR_THRESHOLD:
            is_open = False
            emitted = {"state": "clear", "metric": metric, "ts": ts, "down": down, "seen": seen}
        scope["down"], scope["open"] = down, is_open
        state.set(metric, scope)
        return emitted

    sdf = app.dataframe(source)
    sdf = sdf.apply(rule, stateful=True).filter(lambda value: value is not None)
    sdf.to_topic(sink)
    app.run()
    stopped = time.perf_counter()
    return {
        "processed": processed,
        "seconds": last - first,
        "msgs_per_s": (processed - 1) / (last - first) if last > first else 0.0,
        "shutdown_s": stopped - last,  # final checkpoint (flush, state, commit) and close
    }


def _client_raw(bootstrap: str, topic: str, messages: int, group: str) -> dict[str, Any]:
    """The peer's own ceiling: Quix's Kafka client (confluent-kafka, librdkafka) consuming the
    topic and decoding each message, nothing else, timed from the first batch, committing
    after each (the counterpart of Forewarn's raw aiokafka baseline)."""
    import orjson
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    seen, first = 0, 0.0
    while seen < messages:
        batch = consumer.consume(5000, 1.0)
        if batch and not first:
            first = time.perf_counter()
        for message in batch:
            orjson.loads(message.value() or b"null")
        seen += len(batch)
        if batch:
            consumer.commit(asynchronous=True)
    seconds = time.perf_counter() - first
    consumer.close()
    return {"processed": seen, "seconds": seconds, "msgs_per_s": seen / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--changelog", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--client-raw", action="store_true", help="only the client's raw rate")
    args = parser.parse_args()
    if args.client_raw:
        result = _client_raw(args.bootstrap, args.topic, args.messages, args.group)
        print(RESULT_MARK + json.dumps(result), flush=True)  # noqa: T201 - read by bench/peer.py
        return
    result = _worker(
        args.bootstrap,
        args.topic,
        args.output,
        args.messages,
        args.state_dir,
        args.group,
        args.changelog,
    )
    print(RESULT_MARK + json.dumps(result), flush=True)  # noqa: T201 - read by bench/peer.py


if __name__ == "__main__":
    main()
