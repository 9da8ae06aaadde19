#!/usr/bin/python3
"""The agent's log format, on every line it writes while relaying a BIRD
session and deny-listing an unknown device:

1. default (JSON): every line is one JSON object with "time" (RFC 3339,
   UTC), "level", a non-empty "message", "service": "kbgp" and a
   "component" (supervisor, listener, uplink, admin), all values strings;
   the vendor's context fields where they apply: "accepted device
   connection" with peer-addr, local-addr and session-id; "opening Data
   stream" with device, local-addr, peer-addr, session-id and
   client-metadata; "Deny-listed an INVALID / UNKNOWN device" with
   device_ip, local-addr, peer-addr, sessid, ttl_counter, ttl_seconds.
   Run at --log-level debug, so that the debug lines are checked too.
2. --human-logs: every line has the form of the vendor's sample
   ("2023-07-25 17:01:49.87 INF Deny-listed an INVALID / UNKNOWN device
   component=... device_ip=::1 local-addr=... ttl_seconds=1200"): time,
   level abbreviation, message, component=, then key=value pairs (values
   with blanks or quotes in JSON string quotes); the same context fields.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import json
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

JSON_DEVICE, JSON_ASN = "127.0.0.3", 65003
HUMAN_DEVICE, HUMAN_ASN = "127.0.0.4", 65004
UNKNOWN, UNKNOWN_ASN = "127.0.0.9", 65009
DENY_TEXT = "Deny-listed an INVALID / UNKNOWN device"
COMPONENTS = {"supervisor", "listener", "uplink", "admin"}
LEVELS = {"trace", "debug", "info", "warn", "error", "critical"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# The vendor's human form; a value is bare (no blank, quote or '=') or a
# JSON string.
HUMAN = re.compile(r'^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{2}) (TRC|DBG|INF|WRN|ERR|CRT) (.+?)'
                   r' component=(supervisor|listener|uplink|admin)'
                   r'((?: [A-Za-z0-9_.-]+=(?:"(?:[^"\\]|\\.)*"|[^ "=]+))*)$')
PAIR = re.compile(r' ([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^ "=]+)')
# Context fields by message, as the vendor shows them.
CONTEXT = {
    "accepted device connection": ("peer-addr", "local-addr", "session-id"),
    "opening Data stream": ("device", "local-addr", "peer-addr", "session-id", "client-metadata"),
    DENY_TEXT: ("device_ip", "local-addr", "peer-addr", "sessid", "ttl_counter", "ttl_seconds"),
}


def run_agents(ctx):
    topo = Topology(ctx)
    topo.start_collector([(JSON_DEVICE, JSON_ASN), (HUMAN_DEVICE, HUMAN_ASN)])
    topo.start_ingest([JSON_DEVICE, HUMAN_DEVICE])
    json_agent = topo.start_agent(name="kbgp-json", log_level="debug")
    human_agent = topo.start_agent(name="kbgp-human", log_level="debug", extra_args=["--human-logs"])
    for agent, ip, asn in ((json_agent, JSON_DEVICE, JSON_ASN), (human_agent, HUMAN_DEVICE, HUMAN_ASN)):
        routes = make_routes(20, 2)
        device = topo.start_device("bird", ip, asn, routes, agent=agent)
        topo.wait_established(device, timeout=30)
        topo.wait_routes(device, routes, timeout=30)
        unknown = topo.start_device("bird", UNKNOWN, UNKNOWN_ASN, make_routes(2, 0), agent=agent)
        ctx.wait_until(lambda: agent.log.find(DENY_TEXT), 20, "%s to deny-list %s" % (agent.name, UNKNOWN))
        unknown.stop()
    for agent in (json_agent, human_agent):
        status, left = agent.stop()
        ctx.check(status == 0 and not left, "%s stopped with %s, workers left %s" % (agent.name, status, left))
    return json_agent, human_agent


def agent_lines(agent):
    """What the agent wrote: every line but the harness's own "### " header
    lines (kbgptest/procs.py writes the command line before each start)."""
    return [l for l in agent.log.text().splitlines() if l.strip() and not l.startswith("### ")]


def check_json(ctx, agent):
    lines = agent_lines(agent)
    seen = {}
    for n, line in enumerate(lines, 1):
        where = "%s line %d: %r" % (agent.name, n, line[:300])
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise kbgptest.TestFailure("not JSON (%s): %s" % (e, where))
        ctx.check(isinstance(obj, dict), "not a JSON object: " + where)
        ctx.check(RFC3339.match(str(obj.get("time", ""))), "time not RFC 3339 UTC: " + where)
        ctx.check(obj.get("level") in LEVELS, "level: " + where)
        ctx.check(isinstance(obj.get("message"), str) and obj["message"], "message: " + where)
        ctx.check(obj.get("service") == "kbgp", "service: " + where)
        ctx.check(obj.get("component") in COMPONENTS, "component: " + where)
        ctx.check(all(isinstance(v, str) for v in obj.values()), "a value that is no string: " + where)
        seen.setdefault(obj["component"], 0)
        seen[obj["component"]] += 1
        for field in CONTEXT.get(obj["message"], ()):
            ctx.check(obj.get(field), "%s without %s: %s" % (obj["message"], field, where))
        if "session-id" in obj:
            ctx.check(UUID.match(obj["session-id"]), "session-id not a v4 UUID: " + where)
    for message in CONTEXT:
        ctx.check(agent.log.find(message), "%s never logged %r" % (agent.name, message))
    ctx.check(set(seen) == COMPONENTS, "components seen: %r" % seen)
    ctx.check(any(json.loads(l)["level"] == "debug" for l in lines), "no debug line at --log-level debug")
    ctx.step("JSON: all %d lines are objects with time, level, message, service, component (%s) and the "
             "vendor's context fields" % (len(lines), ", ".join("%s %d" % kv for kv in sorted(seen.items()))))


def check_human(ctx, agent):
    lines = agent_lines(agent)
    seen = set()
    for n, line in enumerate(lines, 1):
        where = "%s line %d: %r" % (agent.name, n, line[:300])
        m = HUMAN.match(line)
        if not m:
            raise kbgptest.TestFailure("not the vendor's human form: " + where)
        message, component = m.group(3), m.group(4)
        seen.add(component)
        fields = dict(PAIR.findall(m.group(5)))
        for field in CONTEXT.get(message, ()):
            ctx.check(fields.get(field), "%s without %s: %s" % (message, field, where))
        for value in fields.values():
            if value.startswith('"'):
                json.loads(value)  # a quoted value is a JSON string
    ctx.check(seen == COMPONENTS, "components seen: %r" % seen)
    deny = [l for l in lines if " INF %s component=uplink " % DENY_TEXT in l]
    ctx.check(deny and "device_ip=%s" % UNKNOWN in deny[0] and "ttl_seconds=1200" in deny[0],
              "the deny line differs from the vendor's sample: %r" % deny)
    ctx.step("--human-logs: all %d lines match the vendor's form, e.g. %s" % (len(lines), deny[0][:160]))


def test(ctx):
    json_agent, human_agent = run_agents(ctx)
    check_json(ctx, json_agent)
    check_human(ctx, human_agent)


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_log_format", __doc__))
