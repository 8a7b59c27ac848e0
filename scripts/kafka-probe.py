#!/usr/bin/env python3
"""Is a Kafka broker ready? Python 3 standard library only.

    scripts/kafka-probe.py [--timeout SECONDS] [--quiet] [--api-versions-only] HOST:PORT

Speaks the Kafka wire protocol minimally over one TCP connection:
  1. ApiVersions v0 (api key 18): the broker must answer error_code 0 and list the APIs
     (and version ranges) it supports.
  2. Metadata v1 (api key 3, all topics): the broker must list at least one broker and
     a controller; the advertised address is printed (clients connect to it, so it must be
     reachable). Skipped with --api-versions-only: a broker that requires SASL
     authentication answers nothing else before it.
Exit 0 when both succeed, 1 otherwise (the reason on stderr).
"""

import argparse
import signal
import socket
import struct
import sys

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 32: "DescribeConfigs", 33: "AlterConfigs",
    36: "SaslAuthenticate", 37: "CreatePartitions",
    42: "DeleteGroups", 44: "IncrementalAlterConfigs",
    46: "ListPartitionReassignments", 47: "OffsetDelete", 50: "DescribeUserScramCredentials",
    51: "AlterUserScramCredentials", 60: "DescribeCluster", 68: "ConsumerGroupHeartbeat",
    69: "ConsumerGroupDescribe", 71: "GetTelemetrySubscriptions", 75: "DescribeTopicPartitions",
}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s


def request(sock, api_key, api_version, correlation_id, body):
    client_id = b"rezef-kafka-probe"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    r = Reader(recv_exact(sock, size))
    got = r.take(">i")
    if got != correlation_id:
        raise ValueError(f"correlation id {got}, expected {correlation_id}")
    return r


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def probe(host, port, timeout, metadata=True):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        # ApiVersions v0: empty body.
        r = request(sock, 18, 0, 1, b"")
        error = r.take(">h")
        if error != 0:
            raise ValueError(f"ApiVersions error_code {error}")
        apis = [(r.take(">h"), r.take(">h"), r.take(">h")) for _ in range(r.take(">i"))]
        if not apis:
            raise ValueError("ApiVersions listed no APIs")
        if not metadata:
            return apis, [], None
        # Metadata v1: topics = null (all topics).
        r = request(sock, 3, 1, 2, struct.pack(">i", -1))
        brokers = []
        for _ in range(r.take(">i")):
            node, host_, port_, _rack = r.take(">i"), r.string(), r.take(">i"), r.string()
            brokers.append((node, host_, port_))
        controller = r.take(">i")
        if not brokers:
            raise ValueError("Metadata listed no brokers")
        return apis, brokers, controller


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quietly, when piped into head
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="HOST:PORT")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--quiet", action="store_true", help="print nothing, only the exit code")
    parser.add_argument("--api-versions-only", action="store_true",
                        help="skip Metadata (for a broker that requires authentication)")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    try:
        apis, brokers, controller = probe(host, int(port), args.timeout,
                                          metadata=not args.api_versions_only)
    except (OSError, ValueError, struct.error) as e:
        if not args.quiet:
            print(f"kafka-probe: {args.address}: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"{args.address}: Kafka broker ready; {len(apis)} APIs")
        for key, lo, hi in sorted(apis):
            print(f"  {key:3d} {API_NAMES.get(key, '?'):28s} v{lo}..v{hi}")
        for node, h, p in brokers:
            print(f"  broker {node} advertised at {h}:{p}" + (" (controller)" if node == controller else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
