#!/usr/bin/python3
"""Data streams are multiplexed over ceil(sessions / --multi) gRPC
connections, packed before a new connection opens, and a connection whose
last session ended is closed.

BIRD processes play 25 routers (127.11.0.1-25, each its own session,
4-byte ASN and router id; BIRD runs one session per neighbor address and
port, so kbgp listens on 13 ports and two BIRDs share the routers); kbgp
runs with --multi 10. The test counts the agent's ESTABLISHED TCP
connections to kbgp-ingest's port with `ss -tn`:

- The Control stream has a connection of its own (the interface allows
  Control and Data to be served by different machines). It is the one
  connection open before any device connects and it stays the same
  throughout; the rest carry the Data streams and must number exactly
  ceil(sessions / 10): 1, 1, 2, 3 for 1, 10, 11, 25 sessions (2, 2, 3, 4
  connections in all).
- With the 15 newest sessions stopped, their two connections close (the 10
  oldest share the first); with all stopped, only Control's is left.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import math
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.bird import DeviceFleet, protocol_name, scale_addresses, scale_asn  # noqa: E402
from kbgptest.net import established_to  # noqa: E402
from kbgptest.topology import COLLECTOR_ASN, Topology  # noqa: E402

MULTI = 10
COUNT = 25


def test(ctx):
    ips = scale_addresses(COUNT, block=11)
    sessions = [(ip, scale_asn(i)) for i, ip in enumerate(ips)]
    topo = Topology(ctx)
    collector = topo.start_collector(sessions)
    ingest = topo.start_ingest([{"device_ip": ip, "device_id": 1100 + i, "device_name": "r%d" % i}
                                for i, ip in enumerate(ips)])
    agent = topo.start_agent(listeners=13, extra_args=["--multi", str(MULTI)])

    def connections():
        return established_to(ingest.port)

    ctx.wait_until(agent.control_connected, 15, "the Control stream to connect")
    ctx.wait_until(lambda: len(connections()) == 1, 10, "one connection (Control's) before any device",
                   describe=lambda: str(connections()))
    control = next(iter(connections()))
    ctx.step("before any device: 1 connection to kbgp-ingest, the Control stream's (from %s)" % control)

    device = DeviceFleet(ctx, "devices", sessions, ["10.99.0.0/24"], agent.endpoints(), COLLECTOR_ASN,
                         enabled=0).start()
    ctx.step("%d BIRDs with %d sessions (127.11.0.1-%d), all disabled" % (len(device.birds), COUNT, COUNT))

    def wait_sessions(n):
        def settled():
            states = collector.protocol_states()
            up = sum(1 for ip in ips if states.get(protocol_name(ip)) == "Established")
            st = agent.status()
            return up == n and device.established_count() == n and st["ActiveSessions"] == n and \
                st["Counters"]["DataStreamsOpen"] == n
        ctx.wait_until(settled, 40, "%d sessions Established at the device, at the collector and in "
                       "the agent" % n, interval=0.3,
                       describe=lambda: "device %d, agent %s" % (device.established_count(),
                                                                 agent.status()["Counters"]))

    def check_connections(n):
        want = 1 + math.ceil(n / MULTI)
        seen = [None]

        def right():
            seen[0] = connections()
            return len(seen[0]) == want
        ctx.wait_until(right, 10, "%d connections to kbgp-ingest for %d sessions" % (want, n),
                       describe=lambda: "%d: %s" % (len(seen[0]), sorted(seen[0])))
        time.sleep(1.5)  # and it stays so (a connection opened late would show now)
        now = connections()
        ctx.check(len(now) == want, "connections changed to %d: %s" % (len(now), sorted(now)))
        ctx.check(control in now, "the Control stream's connection %s is gone: %s" % (control, sorted(now)))
        gauge = agent.status()["Counters"]["GrpcConnectionsOpen"]
        ctx.check(gauge == want - 1, "Counters.GrpcConnectionsOpen is %s, want %d Data connections"
                  % (gauge, want - 1))
        ctx.step("%2d sessions: %d connections = Control + %d for Data (ceil(%d/%d)); "
                 "GrpcConnectionsOpen %d" % (n, len(now), want - 1, n, MULTI, gauge))
        return now

    enabled = 0
    for n in (1, 10, 11, 25):
        device.enable(range(enabled, n))
        enabled = n
        wait_sessions(n)
        check_connections(n)
        if n == 10:
            first_ten = {ip: agent.session(ip)["SessionID"] for ip in ips[:10]}

    one = agent.session(ips[24])
    ctx.check(one["DeviceASN"] == scale_asn(24) and one["RouterID"] == ips[24],
              "session of %s: DeviceASN %r, RouterID %r, want %d (4-byte) and %s" % (
                  ips[24], one["DeviceASN"], one["RouterID"], scale_asn(24), ips[24]))

    # The 15 newest end: their connections (the 2nd and 3rd) have no
    # session left and close; the 10 oldest keep the 1st.
    device.disable(range(10, 25))
    wait_sessions(10)
    check_connections(10)
    still = {ip: agent.session(ip)["SessionID"] for ip in ips[:10]}
    ctx.check(still == first_ten, "the 10 oldest sessions are not the same ones any more (a session "
              "reconnected), so the connection count proves nothing: %s vs %s" % (first_ten, still))
    ctx.step("the 15 newest sessions stopped: their 2 connections closed")

    device.disable(range(0, 10))
    wait_sessions(0)
    check_connections(0)
    ctx.step("all sessions stopped: only the Control stream's connection is left")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_multiplex", __doc__))
