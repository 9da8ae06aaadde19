#!/usr/bin/python3
"""Refusals, through kbgp -> kbgp-ingest (TLS) -> collector BIRD:

1. a registered device (127.0.0.3) is relayed (the control case);
2. an unknown device (127.0.0.9, not in the registry) never reaches
   Established, the agent logs "Deny-listed an INVALID / UNKNOWN device"
   with its device_ip, and a second connection from it within the deny
   period is closed by the agent at once, without a new Control request;
3. an agent with a wrong token is refused: kbgp-ingest logs "rejected call:
   bad credentials", the agent logs UNAUTHENTICATED, and its registered
   device (127.0.0.4) never reaches Established;
4. the registered device's session survived all of that.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.net import connect_and_watch  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

GOOD, GOOD_ASN = "127.0.0.3", 65003
UNKNOWN, UNKNOWN_ASN = "127.0.0.9", 65009
BADTOKEN_DEV, BADTOKEN_ASN = "127.0.0.4", 65004
DENY_TEXT = "Deny-listed an INVALID / UNKNOWN device"
BAD_CREDS_TEXT = "rejected call: bad credentials"
ESTABLISHED_TEXT = "BGP session established"  # BIRD's trace line (debug states)


def never_established(ctx, topo, device, seconds):
    """Watches `device` for `seconds`: it must never reach Established, and
    its BIRD log must never have said so since it started."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = device.session_state()
        ctx.check(state != "Established", "%s reached Established (it must be refused)" % device.ip)
        time.sleep(0.25)
    with open(ctx.log_path(device.name)) as f:
        ctx.check(ESTABLISHED_TEXT not in f.read(),
                  "%s's BIRD log says its BGP session was established" % device.ip)
    if device.ip in [p[0] for p in topo.collector.peers]:
        info = topo.collector.peer_info(device.ip)
        ctx.check(info["state"] != "Established" and not any(info["routes"].values()),
                  "the collector has a session/routes from %s: %s" % (device.ip, info))


def warnings(log):
    return [line.strip() for line, obj in log.records()
            if obj and obj.get("level") in ("warn", "warning", "error", "critical")]


def mentions(log, ip, since):
    return len([line for line, _ in log.records(since) if ip in line])


def test(ctx):
    topo = Topology(ctx)
    topo.start_collector([(GOOD, GOOD_ASN), (BADTOKEN_DEV, BADTOKEN_ASN)])
    ingest = topo.start_ingest([GOOD, BADTOKEN_DEV], log_level="debug")
    agent = topo.start_agent(log_level="debug")

    # 1. The control case: a registered device is relayed.
    good_routes = make_routes(100, 10)
    good = topo.start_device("bird", GOOD, GOOD_ASN, good_routes)
    topo.wait_established(good, timeout=30)
    topo.wait_routes(good, good_routes, timeout=30)

    # 2. An unknown device.
    agent_mark, ingest_mark = agent.log.mark(), ingest.log.mark()
    unknown = topo.start_device("bird", UNKNOWN, UNKNOWN_ASN, make_routes(10, 0))
    deny = ctx.wait_until(lambda: agent.log.find(DENY_TEXT, since=agent_mark, device_ip=UNKNOWN), 20,
                          "kbgp to log %r with device_ip=%s" % (DENY_TEXT, UNKNOWN),
                          describe=lambda: "%s state %s" % (UNKNOWN, unknown.session_state()))
    ctx.step("kbgp logged: %s" % deny[0].strip())
    ctx.check(agent.log.find(DENY_TEXT, since=agent_mark, device_ip=UNKNOWN, ttl_seconds=1200),
              "the deny line does not say ttl_seconds=1200: %s" % deny[0].strip())
    never_established(ctx, topo, unknown, 3)
    ctx.step("%s never reached Established" % UNKNOWN)
    unknown.stop()  # its retries would blur the counts below

    ingest_before = mentions(ingest.log, UNKNOWN, ingest_mark)
    ctx.check(ingest_before > 0,
              "kbgp-ingest (--log-level debug) logged nothing about %s's Control request, so a second "
              "request could not be told from none" % UNKNOWN)
    deny_before = len(agent.log.find(DENY_TEXT, since=agent_mark))
    t = time.monotonic()
    how, data = connect_and_watch(UNKNOWN, "127.0.0.1", agent.listen_port, timeout=5)
    ctx.check(how in ("closed", "reset"),
              "a second connection from deny-listed %s was %s after 5 s (want closed at once)" % (UNKNOWN, how))
    ctx.check(not data, "the agent sent %d bytes to deny-listed %s" % (len(data), UNKNOWN))
    ctx.step("second connection from %s %s by the agent after %.2f s" % (UNKNOWN, how, time.monotonic() - t))
    time.sleep(1.0)  # a Control request, if one were made, would be logged by now
    ingest_after = mentions(ingest.log, UNKNOWN, ingest_mark)
    ctx.check(ingest_after == ingest_before,
              "kbgp-ingest saw %s again (%d log lines before the second connection, %d after): the "
              "agent asked Control for a deny-listed device" % (UNKNOWN, ingest_before, ingest_after))
    ctx.check(len(agent.log.find(DENY_TEXT, since=agent_mark)) == deny_before,
              "the agent logged the deny line again for the second connection (it is logged once)")
    ctx.step("no new Control request for %s; deny line logged once" % UNKNOWN)

    # 3. An agent with a wrong token.
    ingest_mark = ingest.log.mark()
    bad_agent = topo.start_agent(name="kbgp-badtoken", token="not-the-token", log_level="debug")
    bad_dev = topo.start_device("bird", BADTOKEN_DEV, BADTOKEN_ASN, make_routes(10, 0), agent=bad_agent)
    line = ctx.wait_until(lambda: ingest.log.find(BAD_CREDS_TEXT, since=ingest_mark), 20,
                          "kbgp-ingest to log %r" % BAD_CREDS_TEXT)
    ctx.step("kbgp-ingest logged: %s" % line[0].strip())
    line = ctx.wait_until(lambda: bad_agent.log.find("UNAUTHENTICATED"), 20,
                          "the agent with the wrong token to log UNAUTHENTICATED",
                          describe=lambda: "its warnings: %s" % warnings(bad_agent.log)[-3:])
    ctx.step("kbgp (wrong token) logged: %s" % line[0].strip())
    never_established(ctx, topo, bad_dev, 3)
    status = bad_agent.status()
    ctx.check(status.get("ActiveSessions") in (0, 1) and
              (status.get("ControlStream") or {}).get("Connected") is not True,
              "the agent with the wrong token reports a connected Control stream: %r" % status)
    ctx.step("%s never reached Established through the agent with the wrong token" % BADTOKEN_DEV)

    # 4. The registered device was not disturbed.
    ctx.check(good.established(), "the registered device's session went down: %s" % topo.describe_session(good))
    topo.check_routes(good, good_routes)
    st = agent.status()
    ctx.check(st.get("ActiveSessions") == 1, "the good agent reports ActiveSessions %r, want 1"
              % st.get("ActiveSessions"))
    ctx.step("the registered device's session is still up with all its routes")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_refused", __doc__))
