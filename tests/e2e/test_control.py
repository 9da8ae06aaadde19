#!/usr/bin/python3
"""Control semantics, counted at the backend (kbgp-ingest at --log-level
debug logs one "control answer" per ControlRequest for a known device and
one "unknown device, answered BLOCK_IP" per request for an unknown one):

1. Caching and ttl_seconds: the backend answers with ttl_seconds 4 and
   ttl_counter 0 (no limit on uses). Three connections from one device
   within the ttl cost one ControlRequest; a connection after the ttl ran
   out asks again. (A second backend answers with ttl_seconds 0: there,
   every connection asks. A third answers with ttl_seconds 600 and
   ttl_counter 2: each answer serves two more connections from the cache,
   the next one asks again.) Connections are plain TCP connects from the
   device's address: the agent asks Control on accept.
2. Deny-listing: five connections at once from an unknown device make one
   ControlRequest (they wait for the same answer), one log line "Deny-listed
   an INVALID / UNKNOWN device" with the vendor's fields (device_ip,
   local-addr, peer-addr, sessid, ttl_counter, ttl_seconds 1200), and the
   agent then closes the device's connections at once, without asking
   again; /admin/status lists it in DenyList.
3. Pushed updates: kbgp-ingest pushes, unasked, the answers for devices
   with a TCP-MD5 key in its registry when the Control stream opens and
   whenever its registry changes (SIGHUP). A router with a key (127.0.0.5;
   the key itself is not used: the agent runs without MD5 support)
   connects without a single ControlRequest: the pushed answer is in the
   cache. When the router leaves the registry the backend pushes BLOCK_IP:
   the agent deny-lists it (one log line, naming the live session), ends
   its live session (the collector sees it go) and closes its reconnects at
   once. When it is registered again the backend pushes an accepting
   answer: the agent lifts the deny and the router comes back; a later
   block would be logged again (a new deny period).

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.kbgp import Ingest  # noqa: E402
from kbgptest.net import connect_and_watch  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import AGENT_IP, Topology  # noqa: E402

CACHED = "127.0.0.21"     # registered, no key: asked on demand
UNKNOWN = "127.0.0.29"    # not registered
KEYED, KEYED_ASN = "127.0.0.5", 65005  # registered with a TCP-MD5 key: pushed
TTL = 4
DENY_TEXT = "Deny-listed an INVALID / UNKNOWN device"
VENDOR_FIELDS = ("device_ip", "local-addr", "peer-addr", "sessid", "ttl_counter", "ttl_seconds")


def touch(agent, src, hold=0.3):
    """One TCP connection from `src` to the agent, held briefly, then closed."""
    with socket.socket() as s:
        s.bind((src, 0))
        s.settimeout(5)
        s.connect((AGENT_IP, agent.listen_port))
        time.sleep(hold)


def settle(ctx, agent):
    ctx.wait_until(lambda: agent.status()["ActiveSessions"] == 0, 15, "%s's sessions to end" % agent.name,
                   describe=lambda: str(agent.sessions()))


def answers(ingest, ip, since):
    return len(ingest.control_answers(ip, since))


def registry(keyed=True):
    devs = [CACHED]
    if keyed:
        devs.append({"device_ip": KEYED, "md5_key": "pushed-key-5", "device_id": 5})
    return devs


def check_caching(ctx, topo, ingest, agent):
    mark = ingest.log.mark()
    for i in range(3):
        touch(agent, CACHED)
    settle(ctx, agent)
    n = answers(ingest, CACHED, mark)
    ctx.check(n == 1, "3 connections from %s within the %d s ttl made %d ControlRequests, want 1" % (CACHED, TTL, n))
    ctx.step("ttl_seconds %d: 3 connections from %s within it -> 1 ControlRequest at the backend" % (TTL, CACHED))
    time.sleep(TTL + 0.5)
    touch(agent, CACHED)
    settle(ctx, agent)
    n = answers(ingest, CACHED, mark)
    ctx.check(n == 2, "a connection after the ttl ran out: %d ControlRequests in all, want 2" % n)
    ctx.step("after %d s the cached answer expired: the next connection asked again (2 in all)" % TTL)


def second_backend(ctx, topo, name, extra_args):
    """Another kbgp-ingest (same collector and registry) and an agent of its
    own: answers differ only by `extra_args`."""
    port = ctx.free_port(AGENT_IP)
    ingest = Ingest(ctx, ctx.binaries, port, topo.tls, [CACHED],
                    "%s:%d" % (topo.collector.ip, topo.collector.port), log_level="debug",
                    name="kbgp-ingest-" + name, extra_args=extra_args).start()
    saved = topo.ingest
    topo.ingest = ingest
    try:
        agent = topo.start_agent(name="kbgp-" + name)
    finally:
        topo.ingest = saved
    ctx.wait_until(agent.control_connected, 15, "the %s agent's Control stream" % name)
    return ingest, agent


def requests_for(ctx, ingest, agent, connections):
    """ControlRequests the backend saw for `connections` connections from
    CACHED, one after the other."""
    mark = ingest.log.mark()
    for _ in range(connections):
        touch(agent, CACHED)
    settle(ctx, agent)
    return answers(ingest, CACHED, mark)


def check_no_caching(ctx, topo):
    """A backend that answers ttl_seconds 0: nothing is cached."""
    ingest0, agent0 = second_backend(ctx, topo, "ttl0", ["--control-ttl", "0"])
    n = requests_for(ctx, ingest0, agent0, 3)
    ctx.check(n == 3, "with ttl_seconds 0, 3 connections made %d ControlRequests, want 3" % n)
    ctx.step("ttl_seconds 0 (second backend): 3 connections -> 3 ControlRequests")
    agent0.stop()
    ingest0.stop()


def check_ttl_counter(ctx, topo):
    """A backend that answers ttl_seconds 600 and ttl_counter 2: the agent
    serves an answer from its cache twice, then asks again."""
    ingest2, agent2 = second_backend(ctx, topo, "counter2",
                                     ["--control-ttl", "600", "--control-ttl-counter", "2"])
    n = requests_for(ctx, ingest2, agent2, 1)
    ctx.check(n == 1, "the first connection made %d ControlRequests, want 1" % n)
    n = requests_for(ctx, ingest2, agent2, 2)
    ctx.check(n == 0, "2 more connections (the cache's 2 uses) made %d ControlRequests, want 0" % n)
    n = requests_for(ctx, ingest2, agent2, 1)
    ctx.check(n == 1, "the connection after the 2 uses made %d ControlRequests, want 1" % n)
    n = requests_for(ctx, ingest2, agent2, 3)
    ctx.check(n == 1, "3 more connections made %d ControlRequests, want 1 (2 from the cache)" % n)
    ctx.step("ttl_counter 2 (third backend): 7 connections -> 3 ControlRequests "
             "(each answer served from the cache twice)")
    agent2.stop()
    ingest2.stop()


def check_deny(ctx, ingest, agent):
    mark, amark = ingest.log.mark(), agent.log.mark()
    before = agent.status()["Counters"]
    results = []

    def one():
        results.append(connect_and_watch(UNKNOWN, AGENT_IP, agent.listen_port, timeout=8))
    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctx.check(all(how in ("closed", "reset") and not data for how, data in results),
              "the unknown device's connections: %s (want all closed, no bytes)" % results)
    ctx.wait_until(lambda: agent.log.find(DENY_TEXT, since=amark, device_ip=UNKNOWN), 10,
                   "the deny line for %s" % UNKNOWN)
    lines = agent.log.find(DENY_TEXT, since=amark)
    ctx.check(len(lines) == 1, "%d deny lines for 5 connections, want 1:\n%s" % (len(lines), "\n".join(lines)))
    rec = [obj for line, obj in agent.log.records(amark) if obj and obj.get("message") == DENY_TEXT][0]
    missing = [f for f in VENDOR_FIELDS if f not in rec]
    ctx.check(not missing, "the deny line lacks %s: %s" % (missing, lines[0]))
    ctx.check(rec["device_ip"] == UNKNOWN and rec["ttl_seconds"] == "1200" and rec["ttl_counter"] == "0" and
              rec["peer-addr"].startswith(UNKNOWN + ":") and rec["local-addr"] == "%s:%d" % (AGENT_IP, agent.listen_port),
              "deny line fields: %s" % lines[0])
    n = answers(ingest, UNKNOWN, mark)
    ctx.check(n == 1, "5 simultaneous connections from %s made %d ControlRequests, want 1" % (UNKNOWN, n))
    ctx.step("5 connections at once from unknown %s: 1 ControlRequest, 1 log line:\n  %s" % (UNKNOWN, lines[0].strip()))

    t = time.monotonic()
    how, data = connect_and_watch(UNKNOWN, AGENT_IP, agent.listen_port, timeout=5)
    ctx.check(how in ("closed", "reset") and time.monotonic() - t < 1, "a connection within the deny period: "
              "%s after %.2f s" % (how, time.monotonic() - t))
    time.sleep(1)
    ctx.check(answers(ingest, UNKNOWN, mark) == 1, "the agent asked Control again for the deny-listed device")
    ctx.check(len(agent.log.find(DENY_TEXT, since=amark)) == 1, "the deny line was logged again")
    after = agent.status()
    ctx.check(after["Counters"]["ConnectionsDenied"] > before["ConnectionsDenied"],
              "Counters.ConnectionsDenied did not grow: %s" % after["Counters"])
    ctx.check(any(e["Device"] == UNKNOWN for e in after["DenyList"]), "DenyList: %r" % after["DenyList"])
    ctx.step("its next connection was closed by the agent at once (no ControlRequest, no new log line); "
             "DenyList shows it")


def check_pushed(ctx, topo, ingest, agent):
    amark = agent.log.mark()
    routes = make_routes(20, 2)
    dev = topo.start_device("bird", KEYED, KEYED_ASN, routes)
    topo.wait_established(dev, timeout=30)
    topo.wait_routes(dev, routes, timeout=30)
    ctx.check(answers(ingest, KEYED, 0) == 0,
              "the agent asked Control for %s, whose answer the backend pushed when the stream opened"
              % KEYED)
    ctx.check(agent.log.find("Control update pushed by the backend", device_ip=KEYED),
              "the agent did not log the pushed answer for %s" % KEYED)
    ctx.step("%s (answer pushed at stream open) came up without a ControlRequest" % KEYED)
    session_id = agent.session(KEYED)["SessionID"]

    # It leaves the registry: BLOCK_IP is pushed.
    amark = agent.log.mark()
    ingest.write_registry(registry(keyed=False), "%s:%d" % (topo.collector.ip, topo.collector.port))
    ingest.reload()
    line = ctx.wait_until(lambda: agent.log.find(DENY_TEXT, since=amark, device_ip=KEYED), 15,
                          "the agent to deny-list %s after the pushed BLOCK_IP" % KEYED)
    ctx.check(agent.log.find(DENY_TEXT, since=amark, device_ip=KEYED, sessid=session_id),
              "the deny line does not name the live session %s: %s" % (session_id, line[0]))

    def gone():
        info = topo.collector.peer_info(KEYED)
        return info["state"] != "Established" and not any(info["routes"].values())
    ctx.wait_until(gone, 15, "the collector to lose %s's session" % KEYED,
                   describe=lambda: str(topo.collector.peer_info(KEYED)))
    ctx.wait_until(lambda: all(not s["Peer"].startswith(KEYED + ":") for s in agent.sessions()["Sessions"]),
                   10, "the agent to end %s's session" % KEYED)
    denied0 = agent.status()["Counters"]["ConnectionsDenied"]
    ctx.wait_until(lambda: agent.status()["Counters"]["ConnectionsDenied"] > denied0, 15,
                   "the router's reconnects to be closed at once (ConnectionsDenied)")
    ctx.check(not dev.established(), "%s is Established again while deny-listed" % KEYED)
    ctx.check(any(e["Device"] == KEYED for e in agent.status()["DenyList"]), "DenyList lacks %s" % KEYED)
    ctx.check(len(agent.log.find(DENY_TEXT, since=amark, device_ip=KEYED)) == 1, "deny line logged more than once")
    ctx.step("pushed BLOCK_IP: %s deny-listed (1 log line naming session %s), its live session ended at the "
             "agent and the collector, its reconnects closed at once:\n  %s" % (KEYED, session_id, line[0].strip()))

    # Registered again: the pushed answer lifts the deny.
    amark = agent.log.mark()
    ingest.write_registry(registry(keyed=True), "%s:%d" % (topo.collector.ip, topo.collector.port))
    ingest.reload()
    topo.wait_established(dev, timeout=30)
    topo.wait_routes(dev, routes, timeout=30)
    ctx.check(not any(e["Device"] == KEYED for e in agent.status()["DenyList"]), "DenyList still holds %s" % KEYED)
    ctx.step("registered again: the pushed answer lifted the deny; %s is back with its routes" % KEYED)

    # A new block is a new deny period: logged again.
    amark = agent.log.mark()
    ingest.write_registry(registry(keyed=False), "%s:%d" % (topo.collector.ip, topo.collector.port))
    ingest.reload()
    ctx.wait_until(lambda: agent.log.find(DENY_TEXT, since=amark, device_ip=KEYED), 15,
                   "the second block to be logged (a new deny period)")
    ctx.step("blocked again: logged again (a new deny period)")


def test(ctx):
    topo = Topology(ctx)
    topo.start_collector([(KEYED, KEYED_ASN)])
    ingest = topo.start_ingest(registry(), log_level="debug", extra_args=["--control-ttl", str(TTL)])
    agent = topo.start_agent(log_level="debug")
    ctx.wait_until(agent.control_connected, 15, "the Control stream")

    check_caching(ctx, topo, ingest, agent)
    check_no_caching(ctx, topo)
    check_ttl_counter(ctx, topo)
    check_deny(ctx, ingest, agent)
    check_pushed(ctx, topo, ingest, agent)


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_control", __doc__))
