#!/usr/bin/python3
"""The backend connection breaks and Data streams come back, under a
continuous UPDATE load (a BIRD device changing its routes every 0.2 s; hold
time 15 s, keepalives every second both ways):

 1. a TCP relay between kbgp and kbgp-ingest is cut (every connection
    reset, new ones refused) and restored 3 times, within the backend's
    grace period: the sessions resume, none drops;
 2. kbgp-ingest asks every Data stream for a graceful RESTART (SIGUSR1), 10
    times: none drops;
 3. a second device resets its TCP connection: kbgp KILLs exactly that
    session (the collector drops it at once), the first one is untouched;
 4. the relay is cut for longer than the grace period: the backend ends the
    session (the collector sees it end once), kbgp is told KILL when it
    comes back and resets the device, the device reconnects and the
    collector ends up with exactly the device's routes.
"""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import resilience  # noqa: E402
from kbgptest.bird import BirdCollector, BirdDevice, protocol_name  # noqa: E402
from kbgptest.kbgp import Agent  # noqa: E402
from kbgptest.topology import AGENT_IP, COLLECTOR_ASN, COLLECTOR_IP, Topology  # noqa: E402

DEVICE_IP, DEVICE_ASN = "127.0.0.3", 65003
RESETTER_IP, RESETTER_ASN = "127.0.0.4", 65004
GRACE_S = 5
HOLD_S, KEEPALIVE_S = 15, 1


def count(log, text, since=0, **fields):
    return len(log.find(text, since=since, **fields))


def test(ctx):
    Collector = resilience.timed(BirdCollector, HOLD_S, KEEPALIVE_S)
    Device = resilience.timed(BirdDevice, HOLD_S, KEEPALIVE_S)
    topo = Topology(ctx)
    port = ctx.free_port(COLLECTOR_IP)
    topo.collector = Collector(ctx, COLLECTOR_IP, port, COLLECTOR_ASN,
                               [(DEVICE_IP, DEVICE_ASN), (RESETTER_IP, RESETTER_ASN)])
    topo.collector.start()
    ingest = topo.start_ingest([DEVICE_IP, RESETTER_IP], extra_args=["--grace-period", str(GRACE_S)])
    relay = resilience.TcpRelay(ctx.free_port(AGENT_IP), ("127.0.0.1", ingest.port)).start()
    agent = Agent(ctx, ctx.binaries, ctx.free_port(AGENT_IP), relay.port, topo.tls, ctx.free_port(AGENT_IP))
    agent.start()
    topo.agents.append(agent)
    ctx.step("collector (hold %d s, keepalives every %d s), kbgp-ingest (--grace-period %d), kbgp -> "
             "TCP relay :%d -> kbgp-ingest :%d" % (HOLD_S, KEEPALIVE_S, GRACE_S, relay.port, ingest.port))
    pool = resilience.churn_pool()
    device = Device(ctx, DEVICE_IP, DEVICE_ASN, pool, AGENT_IP, agent.listen_port, COLLECTOR_ASN)
    device.start()
    topo.devices.append(device)
    topo.wait_established(device)
    resetter = resilience.MiniSpeaker(RESETTER_IP, RESETTER_ASN, agent.listen_port, hold=HOLD_S).start()
    ctx.wait_until(lambda: topo.collector.peer_info(RESETTER_IP)["state"] == "Established", 20,
                   "the second device's session to be Established at the collector")
    ctx.step("two sessions Established: BIRD %s and our own speaker %s" % (DEVICE_IP, RESETTER_IP))
    device_log = resilience.SessionLog(device, device.proto)
    collector_log = resilience.SessionLog(topo.collector, protocol_name(DEVICE_IP))
    resetter_log = resilience.SessionLog(topo.collector, protocol_name(RESETTER_IP))
    churn = resilience.RouteChurn(device, pool).start()

    # 1. cuts within the grace period
    for i in range(3):
        time.sleep(3)
        mark = ingest.log.mark()
        relay.cut()
        time.sleep(1.5)
        relay.restore()
        t = time.monotonic()
        ctx.wait_until(lambda: count(ingest.log, "Data stream resumed", since=mark) >= 2, 15,
                       "both Data streams to resume after cut %d" % (i + 1),
                       describe=lambda: ingest.log.text(mark)[-2000:])
        ctx.step("cut %d: 1.5 s without a backend connection; both streams resumed %.1f s after the "
                 "relay was back" % (i + 1, time.monotonic() - t))
    device_log.check_continuous(ctx, "the device")
    collector_log.check_continuous(ctx, "the collector")
    resetter_log.check_continuous(ctx, "the collector (second device)")

    # 2. backend-initiated RESTART of every stream
    mark = ingest.log.mark()
    for i in range(10):
        os.kill(ingest.proc.pid, signal.SIGUSR1)
        time.sleep(1.5)
    ctx.wait_until(lambda: count(ingest.log, "Data stream resumed", since=mark) >= 20, 20,
                   "20 resumes after 10 RESTARTs of 2 streams",
                   describe=lambda: "%d resumes" % count(ingest.log, "Data stream resumed", since=mark))
    restarted = count(ingest.log, "Data stream restarted, session kept for a resume", since=mark)
    ctx.step("10 RESTARTs asked by kbgp-ingest: %d streams restarted gracefully, %d resumed"
             % (restarted, count(ingest.log, "Data stream resumed", since=mark)))
    device_log.check_continuous(ctx, "the device")
    collector_log.check_continuous(ctx, "the collector")
    resetter_log.check_continuous(ctx, "the collector (second device)")

    # 3. KILL ends exactly that session
    mark = ingest.log.mark()
    resetter.reset()
    ctx.wait_until(lambda: topo.collector.peer_info(RESETTER_IP)["state"] != "Established", 10,
                   "the collector to drop the session of the device that reset its connection")
    ctx.check(count(ingest.log, "agent sent KILL", since=mark, message="agent sent KILL") == 1,
              "kbgp-ingest should log one KILL from the agent: %s" % ingest.log.find("KILL", since=mark))
    ctx.step("the second device reset its connection: kbgp sent KILL, the collector dropped that "
             "session at once")
    device_log.check_continuous(ctx, "the device")
    collector_log.check_continuous(ctx, "the collector")

    # 4. past the grace period
    mark = ingest.log.mark()
    agent_mark = agent.log.mark()
    relay.cut()
    ctx.wait_until(lambda: count(ingest.log, "no resume within the grace period", since=mark) >= 1,
                   GRACE_S + 10, "kbgp-ingest to end the session after its grace period")
    ctx.wait_until(lambda: topo.collector.peer_info(DEVICE_IP)["state"] != "Established", 10,
                   "the collector to see the session end")
    relay.restore()
    ctx.step("relay cut for longer than the grace period: the backend ended the session, the "
             "collector saw it end")
    # The backend no longer knows the session: its counters (0, 0) and its
    # KILL both end it at kbgp, which resets the device's connection.
    ctx.wait_until(lambda: agent.log.find("session ended", since=agent_mark, reason="backend-killed"),
                   30, "kbgp to end the session when the backend answers KILL",
                   describe=lambda: agent.log.text(agent_mark)[-1500:])
    topo.wait_established(device, timeout=30)
    ctx.step("kbgp reset the device's connection; the device reconnected through kbgp")
    final = churn.stop()
    resilience.wait_exact(ctx, topo, device, final)
    for log, what in ((device_log, "the device"), (collector_log, "the collector")):
        est, down = log.counts()
        ctx.check(est == 2 and down == 1, "%s saw %d establishments and %d drops; want exactly one drop "
                  "(past the grace period) and one re-establishment" % (what, est, down))
    ctx.step("exactly one drop and one re-establishment at each end; the collector holds exactly the "
             "device's %d routes (%d route changes during the test)" % (len(final), churn.ticks))
    relay.stop()


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_resume_backend", __doc__, needs_kbgp_path=True))
