#!/usr/bin/python3
"""SIGTERM stops a live agent cleanly within a bounded time: two BIRD
devices relayed, then SIGTERM to the supervisor:

- kbgp exits with status 0 within 8 s (the supervisor gives its workers
  5 s before it kills them; a clean stop takes well under a second) and
  logs "kbgp stopped";
- every Data stream ended with KILL: kbgp-ingest logged "agent sent KILL"
  for each session id the agent had;
- the sessions are closed: neither device nor the collector is still
  Established with the other side;
- no orphan: none of the three workers (nor any other child of the
  supervisor) is left running.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.procs import pid_alive, process_table  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

DEVICES = [("127.0.0.3", 65003), ("127.0.0.4", 65004)]
BOUND_S = 8.0


def test(ctx):
    topo = Topology(ctx)
    topo.start_collector(DEVICES)
    topo.start_ingest([ip for ip, _ in DEVICES])
    agent = topo.start_agent()
    devices = []
    for ip, asn in DEVICES:
        devices.append(topo.start_device("bird", ip, asn, make_routes(20, 2)))
    for d in devices:
        topo.wait_established(d, timeout=30)
    ctx.wait_until(lambda: agent.sessions()["NumSessions"] == len(DEVICES), 10, "both sessions at the agent")
    sessions = {s["SessionID"] for s in agent.sessions()["Sessions"]}
    supervisor = agent.pid
    workers = [p["pid"] for p in agent.processes() if p["pid"] != supervisor]
    ctx.check(len(workers) == 3, "want 3 workers, found %r" % agent.processes())
    ctx.step("%d sessions relayed (%s); supervisor %d, workers %s" % (
        len(sessions), ", ".join(sorted(sessions)), supervisor, workers))

    ingest_mark = topo.ingest.log.mark()
    t0 = time.monotonic()
    status, left = agent.stop(timeout=15)
    took = time.monotonic() - t0
    ctx.check(status == 0, "kbgp exited with status %s after SIGTERM, want 0 (-9: it had to be killed)" % status)
    ctx.check(took < BOUND_S, "kbgp took %.1f s to stop, bound %.0f s" % (took, BOUND_S))
    ctx.check(not left, "workers still running after kbgp exited: %s" % left)
    ctx.check(agent.log.find("kbgp stopped", component="supervisor"), "no 'kbgp stopped' line")
    ctx.step("SIGTERM: kbgp exited 0 in %.2f s" % took)

    orphans = [p for p in process_table() if p["pid"] in workers or p["ppid"] == supervisor]
    orphans = [p for p in orphans if pid_alive(p["pid"])]
    ctx.check(not orphans, "processes of the agent left: %r" % orphans)

    for sid in sorted(sessions):
        ctx.wait_until(lambda: topo.ingest.log.find("agent sent KILL", since=ingest_mark, session_id=sid), 10,
                       "kbgp-ingest to see KILL on the Data stream of session %s" % sid)
    ctx.step("kbgp-ingest saw KILL on all %d Data streams" % len(sessions))

    for d in devices:
        ctx.wait_until(lambda: not d.established(), 15, "device %s to leave Established" % d.ip)
        ctx.wait_until(lambda: topo.collector.peer_info(d.ip)["state"] != "Established", 15,
                       "the collector's session with %s to end" % d.ip)
    ctx.step("the devices' and the collector's sessions ended; no worker left")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_sigterm", __doc__))
