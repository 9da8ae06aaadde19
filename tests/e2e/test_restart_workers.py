#!/usr/bin/python3
"""kill -9 of the listener, the uplink and the admin worker, each at least
20 times at random moments, while two BIRD devices change their routes
every 0.2 s and the collector sends each the other's routes (UPDATEs both
ways; hold time 15 s, keepalives every second): no BGP session drops (each
device and the collector log exactly one establishment and no drop per
session, kbgp and kbgp-ingest end no session), and at the end the
collector holds exactly the routes each device announces. Every restart
is counted in /admin/status and /metrics.

With test triggers built in (./configure --enable-test-triggers) the
listener also dies right after a device read and right after a device
write, before recording them: its successor settles both from the
kernel's byte counts (TCP_INFO, SIOCINQ/SIOCOUTQ).

Then the uplink is killed with messages in flight, on purpose: while
kbgp-ingest is stopped (DataRequests sent, not received: kbgp resends
them), while the uplink itself is stopped (DataResponses sent, not
received: kbgp-ingest resends them) and while the listener is stopped
(the down ring full, a DataResponse half copied into it: its resent copy
is cut so the device sees it once).

A worker is never killed twice within 6.1 s: more often would be a crash
loop, which the supervisor answers by exiting (10 restarts of one worker
within 60 s; test_supervisor_death.py checks that).

KBGP_E2E_KILLS (default 20) sets the kills per worker, KBGP_E2E_SEED the
random kill order.
"""
import os
import random
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import resilience, scenarios  # noqa: E402
from kbgptest.bird import BirdCollector, BirdDevice, protocol_name  # noqa: E402
from kbgptest.topology import AGENT_IP, COLLECTOR_ASN, COLLECTOR_IP, Topology  # noqa: E402

DEVICES = [("127.0.0.3", 65003, 0), ("127.0.0.4", 65004, 1)]  # ip, asn, pool number
HOLD_S, KEEPALIVE_S = 15, 1
MIN_GAP_S = 6.1   # per worker: at most 10 kills in any 60 s
STEP_S = 2.1      # one kill somewhere about this often


def test(ctx):
    kills_each = int(os.environ.get("KBGP_E2E_KILLS", "20"))
    seed = int(os.environ.get("KBGP_E2E_SEED", str(int(time.time()))))
    ctx.step("random seed %d (KBGP_E2E_SEED reproduces the kill order)" % seed)
    rng = random.Random(seed)

    Collector = resilience.originating(resilience.timed(BirdCollector, HOLD_S, KEEPALIVE_S,
                                                        export_all=True))
    Device = resilience.timed(BirdDevice, HOLD_S, KEEPALIVE_S)
    topo = Topology(ctx)
    topo.collector = Collector(ctx, COLLECTOR_IP, ctx.free_port(COLLECTOR_IP), COLLECTOR_ASN,
                               [(ip, asn) for ip, asn, _ in DEVICES])
    topo.collector.start()
    topo.start_ingest([ip for ip, _, _ in DEVICES])
    agent = topo.start_agent()
    devices, pools, logs = [], [], []
    for ip, asn, k in DEVICES:
        pool = resilience.churn_pool(2000, 200, first4=2000 * k, first6=200 * k)
        dev = Device(ctx, ip, asn, pool, AGENT_IP, agent.listen_port, COLLECTOR_ASN)
        dev.start()
        topo.devices.append(dev)
        devices.append(dev)
        pools.append(pool)
    for dev in devices:
        topo.wait_established(dev)
        logs.append((resilience.SessionLog(dev, dev.proto), "device %s" % dev.ip))
        logs.append((resilience.SessionLog(topo.collector, protocol_name(dev.ip)),
                     "the collector's session with %s" % dev.ip))
    churns = [resilience.RouteChurn(dev, pool).start() for dev, pool in zip(devices, pools)]
    own = resilience.collector_pool(6000)
    collector_churn = resilience.RouteChurn(topo.collector, own).start()
    ctx.step("two devices, each announcing 3/4 of its %d routes and replacing a quarter every 0.2 s; "
             "the collector sends each the other's routes and 3/4 of %d of its own, changing as "
             "often" % (len(pools[0]), len(own)))

    killer = resilience.WorkerKiller(ctx, agent)
    # Messages in flight, on purpose (first: three uplink kills close
    # together, then a pause, so no worker sees 10 restarts within 60 s).
    time.sleep(3)
    in_flight(ctx, topo, agent, killer)
    crash_points(ctx, agent, killer)
    for log, what in logs:
        log.check_continuous(ctx, what)

    start = time.monotonic()
    prior = {w: [t - start for t in killer.times[w]] for w in resilience.WORKER_BINARIES}
    schedule = resilience.random_schedule(list(resilience.WORKER_BINARIES), kills_each, MIN_GAP_S,
                                          STEP_S, rng, prior=prior)
    ctx.step("%d kills planned over %.0f s" % (len(schedule), schedule[-1][0]))
    t0 = start
    slowest = {w: 0.0 for w in resilience.WORKER_BINARIES}
    for at, worker in schedule:
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        old, new, took = killer.kill_and_wait(worker)
        slowest[worker] = max(slowest[worker], took)
        n = sum(killer.kills.values())
        if n % 10 == 0:
            ctx.step("%d kills so far (%s); sessions %s" % (
                n, ", ".join("%s %d" % kv for kv in killer.kills.items()),
                ", ".join("%s %s/%s" % (d.ip, d.session_state(), topo.collector.peer_info(d.ip)["state"])
                          for d in devices)))
    ctx.step("random kills done: %s; slowest kill-to-successor %s" % (
        killer.kills, ", ".join("%s %.2f s" % kv for kv in slowest.items())))
    for log, what in logs:
        log.check_continuous(ctx, what)

    collector_churn.stop()
    for dev, churn in zip(devices, churns):
        final = churn.stop()
        resilience.wait_exact(ctx, topo, dev, final)
        ctx.step("%s: %d route changes; the collector holds exactly its %d routes"
                 % (dev.ip, churn.ticks, len(final)))
    for log, what in logs:
        log.check_continuous(ctx, what)
    ended = topo.ingest.log.find("session ended")
    ctx.check(not ended, "kbgp-ingest ended a session: %s" % ended[:2])
    closed = agent.log.find("session closed")
    ctx.check(not closed, "kbgp closed a session: %s" % closed[:2])
    ctx.step("one continuous BGP session per device at the device and at the collector; no session "
             "ended at kbgp or kbgp-ingest")

    status, metrics = resilience.restarts_reported(agent)
    for w, n in killer.kills.items():
        ctx.check(status.get(w) == n, "/admin/status shows %r restarts of the %s, want %d"
                  % (status.get(w), w, n))
        ctx.check(metrics.get(w) == n, "/metrics kbgp_worker_restarts_total{worker=%r} is %r, want %d"
                  % (w, metrics.get(w), n))
    ctx.step("restarts counted: /admin/status %s, /metrics %s" % (status, metrics))
    reconciled = agent.log.find("reconciled")
    ctx.step("listener reconciliations from the kernel's byte counts: %d" % len(reconciled))
    scenarios.check_agent_stops(ctx, agent)


def resume_field(agent, mark, field):
    """Sum of `field` over kbgp's "resuming the Data stream" lines since `mark`."""
    total = 0
    for line, obj in agent.log.records(mark):
        if obj and obj.get("message") == "resuming the Data stream":
            total += int(obj.get(field, 0))
    return total


CRASH_POINT_TEXT = b"test trigger: listener dies at a crash point"


def crash_points(ctx, agent, killer):
    """With test triggers built in: the listener dies right after a device
    read and right after a device write, before recording either; its
    successor must settle both from the kernel's byte counts."""
    with open(os.path.join(ctx.binaries.builddir, "kbgp-listener"), "rb") as f:
        if CRASH_POINT_TEXT not in f.read():
            ctx.step("(no crash points: the listener was built without --enable-test-triggers)")
            return
    for sig, text, what in ((signal.SIGUSR1, "reconciled device bytes read by the previous listener",
                             "after a read"),
                            (signal.SIGURG, "reconciled backend bytes written by the previous listener",
                             "after a write")):
        mark = agent.log.mark()
        pid = killer.wait_running("listener")
        os.kill(pid, sig)
        t = time.monotonic()
        new = killer.wait_running("listener", not_pid=pid)
        killer.kills["listener"] += 1
        killer.times["listener"].append(t)
        ctx.wait_until(lambda: agent.log.find(text, since=mark), 10,
                       "the new listener to settle what its predecessor did not record",
                       describe=lambda: agent.log.text(mark)[-1500:])
        line = agent.log.find(text, since=mark)[0]
        ctx.step("listener died at a crash point %s (pid %d, successor %d): %s"
                 % (what, pid, new, line[line.find('"message"'):][:160]))
        time.sleep(2)


def in_flight(ctx, topo, agent, killer):
    ingest = topo.ingest
    # DataRequests the backend never read: kbgp-ingest stopped.
    mark = agent.log.mark()
    os.kill(ingest.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(1.5)
        killer.kill("uplink")
        time.sleep(0.5)
    finally:
        os.kill(ingest.proc.pid, signal.SIGCONT)
    killer.wait_running("uplink")
    ctx.wait_until(lambda: resume_field(agent, mark, "resending-requests") > 0, 20,
                   "kbgp to resend the DataRequests kbgp-ingest missed",
                   describe=lambda: agent.log.text(mark)[-1500:])
    ctx.step("uplink killed while kbgp-ingest was stopped: kbgp resent %d DataRequests"
             % resume_field(agent, mark, "resending-requests"))
    time.sleep(2)

    # DataResponses the agent never read: the uplink stopped.
    mark = agent.log.mark()
    uplink = killer.wait_running("uplink")
    os.kill(uplink, signal.SIGSTOP)
    time.sleep(1.5)
    killer.kill("uplink")  # SIGKILL ends a stopped process too
    killer.wait_running("uplink", not_pid=uplink)
    ctx.wait_until(lambda: resume_field(agent, mark, "backend-resends") > 0, 20,
                   "kbgp-ingest to resend the DataResponses kbgp missed",
                   describe=lambda: agent.log.text(mark)[-1500:])
    ctx.step("uplink killed while stopped: kbgp-ingest resent %d DataResponses"
             % resume_field(agent, mark, "backend-resends"))
    time.sleep(2)

    # A DataResponse half copied into a full down ring: the listener stopped.
    mark = agent.log.mark()
    listener = killer.wait_running("listener")
    before = sum(s.get("BytesDown", 0) for s in agent.sessions().get("Sessions") or [])
    os.kill(listener, signal.SIGSTOP)
    try:
        time.sleep(3.0)
        killer.kill("uplink")
        time.sleep(0.5)
    finally:
        os.kill(listener, signal.SIGCONT)
    killer.wait_running("uplink")
    time.sleep(2.0)
    after = sum(s.get("BytesDown", 0) for s in agent.sessions().get("Sessions") or [])
    ctx.step("bytes to the devices in those 5.5 s: %d" % (after - before))
    skipped = resume_field(agent, mark, "response-bytes-already-delivered")
    ctx.step("uplink killed while the listener was stopped: %d bytes of a half-delivered "
             "DataResponse were already in the down ring and skipped in its resent copy%s"
             % (skipped, "" if skipped else " (none this time: no response was cut)"))


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_restart_workers", __doc__, needs_kbgp_path=True))
