#!/usr/bin/python3
"""GET /metrics of a live agent (a relayed device, a deny-listed one) passes
`promtool check metrics` (format and Prometheus's naming lint), has the
content type of the text format, HELP and TYPE for every family, only
kbgp_ names, and values that match the agent: one session, one deny-list
entry, one Data connection and stream, the Control stream up with a
heartbeat RTT, messages and bytes both ways.

promtool comes from $PROMTOOL, PATH, or Debian's prometheus package
(fetched with apt-get download and unpacked, not installed); the test
skips (77) only when it cannot be had.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import re
import sys
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.promtool import check_metrics, find_promtool  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

DEVICE, DEVICE_ASN = "127.0.0.3", 65003
UNKNOWN, UNKNOWN_ASN = "127.0.0.9", 65009
DENY_TEXT = "Deny-listed an INVALID / UNKNOWN device"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse(text):
    """{name or name{labels}: float}, {family: type}, {family: help}."""
    samples, types, helps = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line.startswith("# HELP "):
            _, _, name, text_ = line.split(" ", 3)
            helps[name] = text_
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            if not m:
                raise kbgptest.TestFailure("not a sample line: %r" % line)
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples, types, helps


def test(ctx):
    promtool = find_promtool(log=ctx.step)
    if not promtool:
        raise kbgptest.SkipTest("promtool not found and Debian's prometheus package could not be "
                                "fetched (apt-get download prometheus)")
    ctx.step("promtool: %s" % promtool)

    topo = Topology(ctx)
    topo.start_collector([(DEVICE, DEVICE_ASN)])
    topo.start_ingest([DEVICE])
    agent = topo.start_agent()
    routes = make_routes(100, 10)
    device = topo.start_device("bird", DEVICE, DEVICE_ASN, routes)
    topo.wait_established(device, timeout=30)
    topo.wait_routes(device, routes, timeout=30)
    mark = agent.log.mark()
    unknown = topo.start_device("bird", UNKNOWN, UNKNOWN_ASN, make_routes(3, 0))
    ctx.wait_until(lambda: agent.log.find(DENY_TEXT, since=mark, device_ip=UNKNOWN), 20,
                   "the agent to deny-list %s" % UNKNOWN)
    unknown.stop()
    ctx.wait_until(lambda: agent.status()["ActiveSessions"] == 1, 10, "the refused session to end")

    # The text format's content type, and the document through promtool.
    with urllib.request.urlopen(agent.url("/metrics"), timeout=5) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode()
    ctx.check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
              "/metrics Content-Type %r, want text/plain; version=0.0.4" % ctype)
    ok, output = check_metrics(promtool, text)
    ctx.check(ok, "promtool check metrics failed:\n%s\n--- the document ---\n%s" % (output, text))
    ctx.step("promtool check metrics: no problems in %d lines" % len(text.splitlines()))

    samples, types, helps = parse(text)
    ctx.check(set(types) == set(helps), "families without HELP or TYPE: %s" % (set(types) ^ set(helps)))
    for name in samples:
        base = name.split("{")[0]
        ctx.check(base.startswith("kbgp_"), "metric %s is not prefixed kbgp_" % base)
        ctx.check(base in types, "sample %s has no TYPE line" % name)
        if types[base] == "counter":
            ctx.check(base.endswith("_total"), "counter %s does not end in _total" % base)
    want = {
        "kbgp_sessions_active": 1,
        "kbgp_deny_list_size": 1,
        "kbgp_grpc_connections_open": 1,
        "kbgp_data_streams_open": 1,
        "kbgp_control_stream_connected": 1,
        "kbgp_sessions_accepted_total": 2,
        "kbgp_devices_denied_total": 1,
    }
    for name, value in want.items():
        ctx.check(samples.get(name) == value, "%s is %r, want %r" % (name, samples.get(name), value))
    for direction in ("up", "down"):
        for family in ("kbgp_messages_total", "kbgp_bytes_total"):
            key = '%s{direction="%s"}' % (family, direction)
            ctx.check(samples.get(key, 0) > 0, "%s is %r" % (key, samples.get(key)))
    ctx.check(0 < samples.get("kbgp_control_heartbeat_rtt_seconds", 0) < 5,
              "kbgp_control_heartbeat_rtt_seconds is %r" % samples.get("kbgp_control_heartbeat_rtt_seconds"))
    for name in ("kbgp_framing_errors_total", "kbgp_grpc_reconnects_total", "kbgp_sessions_denied_total",
                 "kbgp_control_requests_total"):
        ctx.check(name in samples, "%s missing" % name)
    ctx.step("values match the agent: 1 session, 1 deny-list entry, 1 Data connection and stream, Control up, "
             "RTT %.6f s, messages up/down %d/%d" % (
                 samples["kbgp_control_heartbeat_rtt_seconds"], samples['kbgp_messages_total{direction="up"}'],
                 samples['kbgp_messages_total{direction="down"}']))


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_metrics", __doc__))
