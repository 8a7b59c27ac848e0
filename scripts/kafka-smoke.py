#!/usr/bin/env python3
"""Smoke check of a Kafka-protocol broker with a real client (librdkafka, via confluent-kafka).

    scripts/kafka-smoke.py [--delete-records] [HOST:PORT]
                                  (default address: $KAFKA_BROKERS)

It checks the broker, not Rezef: what the Kafka backend of rezef-log relies on. Each check
prints PASS, FAIL (a required check) or UNSUPPORTED (an informational one: the broker lacks
the feature; the backend must not rely on it). Exit 1 when a required check failed.

Required: topic creation through the admin API (3 partitions), an idempotent producer with
acks=all, reading everything back in order, a consumer group of two members splitting the
partitions and rebalancing when one leaves, committed offsets.
Informational: message.timestamp.type=LogAppendTime, offsets_for_times (ListOffsets by
timestamp), retention.ms=-1, transactions, topic auto-creation, and with --delete-records,
DeleteRecords (last: tansu 0.6.0 panics on it and then answers nothing more, so without the
flag the broker stays usable for the tests that follow).

Needs `pip install confluent-kafka==2.12.1` (the librdkafka version rdkafka-sys bundles).
"""

import argparse
import os
import sys
import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
    libversion,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

CHECK_TIMEOUT = 30.0  # seconds, per waiting step
BROKERS = os.environ.get("KAFKA_BROKERS")
RUN = uuid.uuid4().hex[:8]
results = []  # (name, status, required)


def check(name, required):
    def wrap(fn):
        def run():
            started = time.monotonic()
            try:
                detail = fn() or ""
                status = "PASS"
            except Exception as e:  # noqa: BLE001 - every failure is a result
                detail = f"{type(e).__name__}: {e}"
                status = "FAIL" if required else "UNSUPPORTED"
            ms = (time.monotonic() - started) * 1000
            results.append((name, status, required))
            print(f"{status:11s} {name} ({ms:.0f} ms){': ' + detail if detail else ''}", flush=True)
        run.__name__ = fn.__name__
        return run
    return wrap


_admin = None


def admin():
    # One client for the run: a future fails with _DESTROY once its client is collected.
    global _admin
    if _admin is None:
        _admin = AdminClient({"bootstrap.servers": BROKERS})
    return _admin


def create_topic(name, partitions=3, config=None):
    fs = admin().create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=CHECK_TIMEOUT, request_timeout=CHECK_TIMEOUT)
    fs[name].result(timeout=CHECK_TIMEOUT)


def partitions_of(name):
    md = admin().list_topics(name, timeout=CHECK_TIMEOUT)
    t = md.topics[name]
    if t.error is not None:
        raise KafkaException(t.error)
    return sorted(t.partitions)


def produce(topic, records, **conf):
    """records: [(partition, key, value, timestamp_ms or None)]; returns [(partition, offset)]."""
    p = Producer({"bootstrap.servers": BROKERS, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, **conf})
    acks, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acks.append((msg.partition(), msg.offset()))

    for partition, key, value, ts in records:
        kw = {"timestamp": ts} if ts is not None else {}
        p.produce(topic, value=value, key=key, partition=partition, on_delivery=on_delivery, **kw)
    left = p.flush(CHECK_TIMEOUT)
    if errors:
        raise KafkaException(errors[0])
    if left:
        raise TimeoutError(f"{left} records not acknowledged in {CHECK_TIMEOUT}s")
    return acks


def read_all(topic, partitions, count, offset=OFFSET_BEGINNING, **conf):
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": f"reader-{RUN}",
                  "enable.auto.commit": False, **conf})
    try:
        c.assign([TopicPartition(topic, p, offset) for p in partitions])
        out, deadline = [], time.monotonic() + CHECK_TIMEOUT
        while len(out) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            out.append(m)
        if len(out) < count:
            raise TimeoutError(f"read {len(out)} of {count} records in {CHECK_TIMEOUT}s")
        return out
    finally:
        c.close()


# ---------------------------------------------------------------- required checks

MAIN = f"smoke-{RUN}"
N = 30


@check("create topic with 3 partitions (CreateTopics, Metadata)", required=True)
def create_main():
    create_topic(MAIN, 3)
    ps = partitions_of(MAIN)
    if ps != [0, 1, 2]:
        raise AssertionError(f"partitions {ps}")
    try:
        create_topic(MAIN, 3)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise AssertionError(f"creating it again: {e}, expected TOPIC_ALREADY_EXISTS") from e
        return "creating it again: TOPIC_ALREADY_EXISTS"
    raise AssertionError("creating it again succeeded")


@check(f"idempotent producer, acks=all: {N} records over 3 partitions", required=True)
def produce_main():
    acks = produce(MAIN, [(i % 3, f"k{i}".encode(), f"v{i}".encode(), None) for i in range(N)])
    by_part = {p: sorted(o for q, o in acks if q == p) for p in range(3)}
    for p, offsets in by_part.items():
        if offsets != list(range(N // 3)):
            raise AssertionError(f"partition {p} offsets {offsets}")
    return "offsets 0..9 in each partition"


@check("read everything back in order (Fetch), CreateTime timestamps", required=True)
def consume_main():
    msgs = read_all(MAIN, [0, 1, 2], N)
    for p in range(3):
        got = [(m.offset(), m.key().decode(), m.value().decode()) for m in msgs if m.partition() == p]
        want = [(j, f"k{i}", f"v{i}") for j, i in enumerate(range(p, N, 3))]
        if got != want:
            raise AssertionError(f"partition {p}: {got} != {want}")
    kinds = {m.timestamp()[0] for m in msgs}
    if kinds != {TIMESTAMP_CREATE_TIME}:
        raise AssertionError(f"timestamp types {kinds}")
    return "no loss, no duplicates, per-partition order kept"


@check("watermarks (ListOffsets earliest/latest)", required=True)
def watermarks():
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": f"wm-{RUN}"})
    try:
        marks = [c.get_watermark_offsets(TopicPartition(MAIN, p), timeout=CHECK_TIMEOUT) for p in range(3)]
    finally:
        c.close()
    if marks != [(0, N // 3)] * 3:
        raise AssertionError(f"watermarks {marks}")
    return f"{marks}"


@check("consumer group: 2 members split 3 partitions, commit, rebalance on leave", required=True)
def group():
    gid = f"group-{RUN}"
    assigned = {"a": set(), "b": set()}

    def member(name):
        def on_assign(c, parts):
            assigned[name] = {p.partition for p in parts}

        def on_revoke(c, parts):
            assigned[name] = set()

        c = Consumer({"bootstrap.servers": BROKERS, "group.id": gid, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                      "heartbeat.interval.ms": 500})
        c.subscribe([MAIN], on_assign=on_assign, on_revoke=on_revoke)
        return c

    consumed = {"a": [], "b": []}

    def pump(members, until, what):
        deadline = time.monotonic() + CHECK_TIMEOUT
        while time.monotonic() < deadline:
            for name, c in members.items():
                m = c.poll(0.1)
                if m is not None and not m.error():
                    consumed[name].append((m.partition(), m.offset()))
            if until():
                return
        raise TimeoutError(f"{what}: assignments {assigned} after {CHECK_TIMEOUT}s")

    a = member("a")
    t0 = time.monotonic()
    pump({"a": a}, lambda: assigned["a"] == {0, 1, 2}, "first member alone")
    t_alone = time.monotonic() - t0
    b = member("b")
    t0 = time.monotonic()
    pump({"a": a, "b": b},
         lambda: assigned["a"] and assigned["b"] and not (assigned["a"] & assigned["b"])
         and assigned["a"] | assigned["b"] == {0, 1, 2},
         "two members")
    t_split = time.monotonic() - t0
    split = f"a={sorted(assigned['a'])} b={sorted(assigned['b'])}"
    # Both members read their own partitions to the end; then b commits its positions.
    want = {"a": {(p, o) for p in assigned["a"] for o in range(N // 3)},
            "b": {(p, o) for p in assigned["b"] for o in range(N // 3)}}
    pump({"a": a, "b": b}, lambda: want["a"] <= set(consumed["a"]) and want["b"] <= set(consumed["b"]),
         "reading after the split")
    b_parts = sorted(assigned["b"])
    b.commit(offsets=[TopicPartition(MAIN, p, N // 3) for p in b_parts], asynchronous=False)
    got = b.committed([TopicPartition(MAIN, p) for p in b_parts], timeout=CHECK_TIMEOUT)
    if [tp.offset for tp in got] != [N // 3] * len(b_parts):
        raise AssertionError(f"committed {[(tp.partition, tp.offset) for tp in got]}")
    b.close()  # LeaveGroup: a must get all three back
    t0 = time.monotonic()
    pump({"a": a}, lambda: assigned["a"] == {0, 1, 2}, "after b left")
    t_back = time.monotonic() - t0
    a.close()
    return (f"{split}; committed offsets read back; join {t_alone:.1f}s, split {t_split:.1f}s, "
            f"all back to a after leave {t_back:.1f}s")


# ---------------------------------------------------------------- informational checks

@check("topic config message.timestamp.type=LogAppendTime", required=False)
def log_append_time():
    topic = f"smoke-lat-{RUN}"
    create_topic(topic, 1, {"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    produce(topic, [(0, b"k", b"v", 1_000_000)])  # a CreateTime far in the past
    (m,) = read_all(topic, [0], 1)
    kind, ts = m.timestamp()
    if kind != TIMESTAMP_LOG_APPEND_TIME or ts < before - 5000:
        raise AssertionError(f"timestamp type {kind} value {ts}: the broker kept the producer's time")
    return f"timestamp type LogAppendTime, {ts - before} ms after the produce call"


@check("offsets_for_times (ListOffsets by timestamp)", required=False)
def offsets_for_times():
    topic = f"smoke-oft-{RUN}"
    create_topic(topic, 1)
    t0 = int(time.time() * 1000) - 60_000
    produce(topic, [(0, None, f"v{i}".encode(), t0 + i * 1000) for i in range(10)])
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": f"oft-{RUN}"})
    try:
        got = [c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=CHECK_TIMEOUT)[0].offset
               for ts in (t0 - 1, t0 + 5500, t0 + 9000, t0 + 60_000)]
    finally:
        c.close()
    if got != [0, 6, 9, -1]:
        raise AssertionError(f"offsets for (before, mid, last, after) = {got}, expected [0, 6, 9, -1]")
    return "before the first → 0, between → the next, the last → 9, after the end → -1 (end)"


@check("topic config retention.ms=-1 (CreateTopics config, DescribeConfigs)", required=False)
def retention_forever():
    topic = f"smoke-ret-{RUN}"
    create_topic(topic, 1, {"retention.ms": "-1"})
    fs = admin().describe_configs([ConfigResource("topic", topic)], request_timeout=CHECK_TIMEOUT)
    (cfg,) = [f.result(timeout=CHECK_TIMEOUT) for f in fs.values()]
    value = cfg["retention.ms"].value if "retention.ms" in cfg else None
    if value != "-1":
        raise AssertionError(f"created; DescribeConfigs says retention.ms={value!r}"
                             f" ({len(cfg)} entries: {sorted(cfg)[:8]})")
    return "created and read back as -1"


@check("DeleteRecords (log start offset moves)", required=False)
def delete_records():
    topic = f"smoke-del-{RUN}"
    create_topic(topic, 1)
    produce(topic, [(0, None, f"v{i}".encode(), None) for i in range(10)])
    fs = admin().delete_records([TopicPartition(topic, 0, 4)], request_timeout=CHECK_TIMEOUT)
    (res,) = [f.result(timeout=CHECK_TIMEOUT) for f in fs.values()]
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": f"del-{RUN}"})
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=CHECK_TIMEOUT)
    finally:
        c.close()
    first = read_all(topic, [0], 1)[0].offset()
    if (low, high, first) != (4, 10, 4):
        raise AssertionError(f"low watermark {low}, high {high}, first record read {first}"
                             f" (DeleteRecords answered {res})")
    return "low watermark 4, reading from the beginning starts at 4"


@check("transactions (commit and abort, read_committed)", required=False)
def transactions():
    topic = f"smoke-txn-{RUN}"
    create_topic(topic, 1)
    p = Producer({"bootstrap.servers": BROKERS, "transactional.id": f"txn-{RUN}"})
    p.init_transactions(CHECK_TIMEOUT)
    p.begin_transaction()
    p.produce(topic, value=b"committed", partition=0)
    p.commit_transaction(CHECK_TIMEOUT)
    p.begin_transaction()
    p.produce(topic, value=b"aborted", partition=0)
    p.abort_transaction(CHECK_TIMEOUT)
    p.begin_transaction()
    p.produce(topic, value=b"committed-2", partition=0)
    p.commit_transaction(CHECK_TIMEOUT)
    msgs = read_all(topic, [0], 2, **{"isolation.level": "read_committed"})
    values = [m.value() for m in msgs]
    if values != [b"committed", b"committed-2"]:
        raise AssertionError(f"read_committed read {values}")
    return "read_committed saw only the committed records"


@check("produce to a missing topic (auto-creation)", required=False)
def auto_create():
    topic = f"smoke-auto-{RUN}"
    produce(topic, [(-1, None, b"v", None)], **{"message.timeout.ms": 5000})
    return f"auto-created with partitions {partitions_of(topic)}"


def main():
    global BROKERS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", nargs="?", help="HOST:PORT")
    parser.add_argument("--delete-records", action="store_true",
                        help="also check DeleteRecords (may leave the broker unusable)")
    args = parser.parse_args()
    BROKERS = args.address or BROKERS
    if not BROKERS:
        print("kafka-smoke: give HOST:PORT or set KAFKA_BROKERS", file=sys.stderr)
        return 2
    print(f"kafka-smoke: {BROKERS}, librdkafka {libversion()[0]}", flush=True)
    steps = [create_main, produce_main, consume_main, watermarks, group, log_append_time,
             offsets_for_times, retention_forever, transactions, auto_create]
    # DeleteRecords last: where a broker panics on it, it may serve nothing afterwards.
    if args.delete_records:
        steps.append(delete_records)
    for step in steps:
        step()
    if not args.delete_records:
        print("SKIPPED     DeleteRecords (--delete-records to check it)", flush=True)
    failed = [n for n, s, _ in results if s == "FAIL"]
    unsupported = [n for n, s, _ in results if s == "UNSUPPORTED"]
    passed = [n for n, s, _ in results if s == "PASS"]
    print(f"kafka-smoke: {len(passed)} checks passed, {len(failed)} required failed, "
          f"{len(unsupported)} unsupported", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
