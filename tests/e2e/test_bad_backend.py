#!/usr/bin/python3
"""Bad input from the backend, end to end.

kbgp ══TLS══▶ fault_proxy (tests/e2e/fault_proxy.cc) ══TLS══▶ kbgp-ingest ─▶ collector BIRD

Two BIRD devices (127.0.0.3, .4; 1,000 IPv4 routes each) must keep exactly
their routes in one continuous session at both ends, and no worker may
restart, while the proxy misbehaves on the Data (or Control) stream of one
victim device at a time (minimal BGP speakers, 127.0.0.41 on, peers of the
collector). Per case: what the agent must do (docs/architecture.md, "Bad
input"), the log line and the counter:

| fault | agent | counter |
|---|---|---|
| unknown action mid-stream | KILL, device reset | backend_errors{data_unknown_action} |
| DataResponse of 5 MiB | stream refused by gRPC, session ends | backend_errors{data_oversized} |
| KILL before any data / mid-stream | device reset | backend_actions{kill} |
| bad / repeated counters in the headers | KILL, device reset | backend_errors{data_bad_counters} |
| Control answer with action 9 | ignored, the waiting session ends | backend_errors{control_unknown_action} |
| RESTART before any data / mid-stream | new stream, session carries on | backend_actions{restart} |
| 1 MiB DataResponse (2x the ring) | written to the device as whole messages (the agent's framing follower), the device's kernel takes every byte; carries on | -- |
| bytes that are no DataResponse | stream cancelled after 2 s, resumed, carries on | backend_errors{data_unreadable} |
| junk headers (printable, -bin) | carries on; /admin/sessions/<ip> valid JSON | -- |
| a 32 KiB header | stream fails, resumed, carries on | DataStreamsFailed |
| bytes that are no ControlResponse | Control stream reconnects; sessions carry on | backend_errors{control_stream_failed} |

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import SkipTest, badinput, resilience  # noqa: E402
from kbgptest.bird import protocol_name  # noqa: E402
from kbgptest.kbgp import Agent, LogFile  # noqa: E402
from kbgptest.net import tcp_listening  # noqa: E402
from kbgptest.topology import AGENT_IP, Topology  # noqa: E402

GOOD = [("127.0.0.3", 65003, 0), ("127.0.0.4", 65004, 1)]
ROUTES = 1000
LARGE_KEEPALIVES = (1024 * 1024) // 19

# (fault, after N backend messages, expectation, counter (group, key) or None)
CASES = [
    ("unknown_action", 2, "ends", ("BackendErrors", "data_unknown_action"),
     "unknown action from the backend on the Data stream"),
    ("oversized", 2, "ends", ("BackendErrors", "data_oversized"),
     "the backend sent a DataResponse larger than the message limit"),
    ("kill", 0, "ends", ("BackendActions", "kill"), "backend killed the session"),
    ("kill", 2, "ends", ("BackendActions", "kill"), "backend killed the session"),
    ("bad_counters", 0, "ends", ("BackendErrors", "data_bad_counters"),
     "Data stream counters disagree with the backend"),
    ("dup_counters", 0, "ends", ("BackendErrors", "data_bad_counters"),
     "Data stream counters disagree with the backend"),
    # No key at all: judged after a grace period (a stream that failed
    # before its headers arrived looks the same at first).
    ("no_metadata", 0, "ends", ("BackendErrors", "data_bad_counters"),
     "Data stream counters disagree with the backend"),
    ("control_unknown_action", 0, "ends", ("BackendErrors", "control_unknown_action"),
     "Control answer with an unknown action ignored"),
    ("restart", 0, "lives", ("BackendActions", "restart"),
     "backend asked for a graceful restart of the Data stream"),
    ("restart", 2, "lives", ("BackendActions", "restart"),
     "backend asked for a graceful restart of the Data stream"),
    ("large", 2, "lives", None, None),
    ("garbage", 2, "lives", ("BackendErrors", "data_unreadable"),
     "the backend's Data stream stopped being readable but did not end"),
    ("junk_metadata", 0, "lives", None, None),
    ("huge_metadata", 0, "lives", ("Counters", "DataStreamsFailed"), "Data stream failed"),
    ("control_garbage", 0, "lives", ("BackendErrors", "control_stream_failed"), "Control stream ended"),
]


# KBGP_E2E_FAULTS=garbage,large runs only those cases (debugging).
if os.environ.get("KBGP_E2E_FAULTS"):
    CASES = [c for c in CASES if c[0] in os.environ["KBGP_E2E_FAULTS"].split(",")]


def received_bytes(sock):
    """bytes_received of a connected socket, from the kernel (`ss -i`)."""
    import re
    import subprocess
    port = sock.getsockname()[1]
    out = subprocess.run(["ss", "-tnHi", "( sport = :%d )" % port], capture_output=True, text=True,
                         timeout=5).stdout
    m = re.search(r"bytes_received:(\d+)", out)
    return int(m.group(1)) if m else 0


def tcp_queues(sock):
    """`ss` lines for both ends of a device connection (Recv-Q, Send-Q)."""
    import subprocess
    try:
        port = sock.getsockname()[1]
        out = subprocess.run(["ss", "-tnHi", "( sport = :%d or dport = :%d )" % (port, port)],
                             capture_output=True, text=True, timeout=5).stdout
        return " | ".join(" ".join(l.split()) for l in out.splitlines())
    except (OSError, subprocess.SubprocessError) as e:
        return "ss: %s" % e


def victim_ip(i):
    return "127.0.0.%d" % (41 + i)


def counter(agent, where):
    group, key = where
    c = badinput.counters(agent)
    return c[key] if group == "Counters" else c[group][key]


def test(ctx):
    proxy_bin = os.path.join(ctx.binaries.builddir, "tests", "e2e", "fault_proxy")
    if not os.access(proxy_bin, os.X_OK):
        raise SkipTest("tests/e2e/fault_proxy is not built (make check builds it; or make "
                       "tests/e2e/fault_proxy)")
    victims = [(victim_ip(i), 65100 + i) for i in range(len(CASES))]
    topo = Topology(ctx)
    collector = topo.start_collector([(ip, asn) for ip, asn, _ in GOOD] + victims)
    ingest = topo.start_ingest([ip for ip, _, _ in GOOD] + [ip for ip, _ in victims])

    faults = ctx.path("faults.txt")
    open(faults, "w").close()
    proxy_port = ctx.free_port(AGENT_IP)
    debug = ["gdb", "-q", "-batch", "-ex", "run", "-ex", "thread apply all bt 12", "--args"] \
        if os.environ.get("KBGP_E2E_PROXY_GDB") == "1" else []
    proxy = ctx.spawn("fault_proxy", debug + [proxy_bin, "--listen", "127.0.0.1:%d" % proxy_port,
                                      "--target", "127.0.0.1:%d" % ingest.port,
                                      "--cert", topo.tls.server_cert, "--key", topo.tls.server_key,
                                      "--ca", topo.tls.ca_cert, "--server-name", "localhost",
                                      "--faults", faults])
    proxy_log = LogFile(ctx.log_path("fault_proxy"))
    ctx.wait_until(lambda: tcp_listening("127.0.0.1", proxy_port), 15,
                   "fault_proxy to listen on 127.0.0.1:%d" % proxy_port)
    agent = Agent(ctx, ctx.binaries, ctx.free_port(AGENT_IP), proxy_port, topo.tls,
                  ctx.free_port(AGENT_IP))
    agent.start()
    topo.agents.append(agent)
    ctx.step("fault_proxy on 127.0.0.1:%d between kbgp (:%d) and kbgp-ingest (:%d)"
             % (proxy_port, agent.listen_port, ingest.port))

    devices, pools, logs = badinput.start_good_devices(
        ctx, topo, collector, GOOD, lambda k: resilience.churn_pool(ROUTES, 0, first4=ROUTES * k))
    restarts0 = badinput.restarts(agent)

    for i, case in enumerate(CASES):
        run_case(ctx, topo, agent, collector, proxy_log, faults, victims[i], case)
        ctx.check(proxy.alive(), "fault_proxy exited with status %s" % proxy.exited_with())
        ctx.check(agent.proc.alive(), "kbgp exited with status %s" % agent.proc.exited_with())
        for dev, pool in zip(devices, pools):
            topo.check_routes(dev, pool)
        r = badinput.restarts(agent)
        ctx.check(r == restarts0, "worker restarts changed: %s -> %s" % (restarts0, r))
    for log, what in logs:
        log.check_continuous(ctx, what)
    ctx.step("after all %d faults: both good devices hold exactly their %d routes in one continuous "
             "session at both ends; no worker restarted (%s)" % (len(CASES), ROUTES, restarts0))


def run_case(ctx, topo, agent, collector, proxy_log, faults, victim, case):
    fault, after, expect, where, message = case
    ip, asn = victim
    name = "%s (after %d)" % (fault, after)
    since = agent.log.mark()
    proxy_since = proxy_log.mark()
    before = counter(agent, where) if where else None
    with open(faults, "a") as f:
        f.write("%s %s %d\n" % (ip, fault, after))
    speaker = resilience.MiniSpeaker(ip, asn, agent.listen_port)
    try:
        try:
            speaker.start()
        except ConnectionResetError:
            # A KILL before any data may reset the connection before the
            # victim even wrote its OPEN.
            speaker.closed.set()
        ctx.wait_until(lambda: proxy_log.find("fault injected: %s for %s" % (fault, ip), since=proxy_since),
                       20, "%s: the proxy to inject it" % name)
        if expect == "ends":
            ctx.wait_until(speaker.closed.is_set, 20, "%s: the agent to end the victim's connection" % name)
            # The victim hangs up itself on bad framing: that is not the
            # agent ending it.
            ctx.check(speaker.framing_error is None, "%s: the victim got bad framing from the agent: %s"
                      % (name, speaker.framing_error))
            outcome = "victim's connection ended"
        else:
            # Alive, through the fault: Established at the collector and
            # still relaying (the victim's keepalives, the collector's).
            ctx.wait_until(lambda: collector.peer_info(ip)["state"] == "Established", 20,
                           "%s: victim %s Established at the collector" % (name, ip))
            time.sleep(3)
            ctx.check(not speaker.closed.is_set(), "%s: the victim's connection was closed%s" % (
                name, " (bad framing from the agent: %s)" % speaker.framing_error if speaker.framing_error else ""))
            ctx.check(collector.peer_info(ip)["state"] == "Established",
                      "%s: the collector lost the victim" % name)
            est, down = resilience.SessionLog(collector, protocol_name(ip)).counts()
            ctx.check(est == 1 and down == 0, "%s: the collector's session with the victim was "
                      "established %d times and dropped %d times" % (name, est, down))
            outcome = "victim's session carried on (one session at the collector)"
            if fault == "large":
                # What the agent wrote to the device is followed by its own
                # BGP framing follower (MessagesDown: whole messages only),
                # and the device's kernel must have taken every byte.
                want_bytes = LARGE_KEEPALIVES * 19
                seen = [None]

                def delivered():
                    d = agent.session(ip)
                    seen[0] = (d.get("MessagesDown"), d.get("BytesDown"), received_bytes(speaker.sock))
                    return d.get("MessagesDown", 0) >= LARGE_KEEPALIVES and \
                        d.get("BytesDown", 0) >= want_bytes and seen[0][2] >= want_bytes and \
                        speaker.received >= LARGE_KEEPALIVES
                ctx.wait_until(delivered, 30, "the %d injected KEEPALIVEs to reach the victim" % LARGE_KEEPALIVES,
                               describe=lambda: "agent MessagesDown, BytesDown, victim kernel bytes_received: %s; "
                               "reader parsed %d; tcp: %s" % (seen[0], speaker.received, tcp_queues(speaker.sock)))
                outcome += ("; the agent wrote all %d KEEPALIVEs of the 1 MiB DataResponse as whole messages "
                            "(MessagesDown %d), the victim's kernel took %d bytes and its reader parsed %d "
                            "whole messages" % (LARGE_KEEPALIVES, seen[0][0], seen[0][2], speaker.received))
            if fault == "junk_metadata":
                detail = agent.session(ip)
                md = detail.get("ServerMetadata")
                ctx.check(isinstance(md, dict) and any(k.startswith("x-junk") for k in md),
                          "/admin/sessions/%s ServerMetadata lacks the junk headers: %s" % (ip, json.dumps(md)[:300]))
                ctx.check(len(json.dumps(md)) <= 4096, "ServerMetadata is %d bytes" % len(json.dumps(md)))
                outcome += "; /admin/sessions/%s shows %d metadata keys" % (ip, len(md))
        line = ""
        if message:
            hits = []

            def logged():
                hits[:] = agent.log.find(message, since=since)
                return bool(hits)
            ctx.wait_until(logged, 10, "%s: the log line %r" % (name, message))
            line = hits[0].strip()[:240]
        if where:
            ctx.wait_until(lambda: counter(agent, where) > before, 10,
                           "%s: %s.%s to grow (was %d)" % (name, where[0], where[1], before))
            outcome += "; %s.%s %d -> %d" % (where[0], where[1], before, counter(agent, where))
        ctx.step("%-26s victim %s: %s\n    %s" % (name, ip, outcome, line))
    finally:
        speaker.close()


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_bad_backend", __doc__))
