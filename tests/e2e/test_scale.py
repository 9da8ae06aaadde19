#!/usr/bin/python3
"""1,000 devices at once through one agent.

1,000 routers (127.12.x.y, each its own BGP session, 4-byte ASN and router
id) are played by BIRD processes with 16 sessions each (BIRD runs one
session per neighbor address and port, so kbgp listens on 16 ports of
127.0.0.1); the collector BIRD has 1,000 passive neighbors; kbgp-ingest's
registry has all 1,000. All sessions must reach Established at the
collector within 120 s, and then the agent must show 1,000 sessions, 1,000
Data streams on 100 Data connections (--multi 10) plus Control's (`ss`),
and every session's ASN from its OPEN. When the devices stop, every session
ends at the agent and only the Control connection is left.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.bird import scale_asn  # noqa: E402
from kbgptest.net import established_to  # noqa: E402
from kbgptest.scale import Scale  # noqa: E402

COUNT = 1000
ESTABLISH_BOUND = 120  # seconds


def test(ctx):
    scale = Scale(ctx, COUNT)
    topo, agent, fleet, ips = scale.topo, scale.agent, scale.fleet, scale.ips
    took = scale.bring_up(ESTABLISH_BOUND)
    ctx.step("all %d sessions Established at the collector %.1f s after they were enabled" % (COUNT, took))

    st = agent.status()
    c = st["Counters"]
    ctx.check(st["ActiveSessions"] == COUNT and c["DataStreamsOpen"] == COUNT,
              "agent: ActiveSessions %s, DataStreamsOpen %s, want %d" % (st["ActiveSessions"],
                                                                      c["DataStreamsOpen"], COUNT))
    ctx.check(c["GrpcConnectionsOpen"] == COUNT // 10, "GrpcConnectionsOpen %s, want %d"
              % (c["GrpcConnectionsOpen"], COUNT // 10))
    conns = established_to(topo.ingest.port)
    ctx.check(len(conns) == COUNT // 10 + 1, "%d connections to kbgp-ingest, want %d (Data) + 1 (Control)"
              % (len(conns), COUNT // 10))
    listing = agent.sessions()
    asns = {s["Peer"].rsplit(":", 1)[0]: s["DeviceASN"] for s in listing["Sessions"]}
    ctx.check(listing["NumSessions"] == COUNT and
              all(asns.get(ip) == scale_asn(i) for i, ip in enumerate(ips)),
              "/admin/sessions does not list every device with its ASN (%d sessions)" % listing["NumSessions"])
    ctx.check(c["ControlRequests"] == COUNT and c["DataStreamsFailed"] == 0,
              "ControlRequests %s (want %d, one per device), DataStreamsFailed %s" % (
                  c["ControlRequests"], COUNT, c["DataStreamsFailed"]))
    ctx.step("agent: %d sessions, %d Data streams on %d connections + Control's, every ASN right, "
             "%d Control requests" % (st["ActiveSessions"], c["DataStreamsOpen"], c["GrpcConnectionsOpen"],
                                      c["ControlRequests"]))

    t = time.monotonic()
    fleet.stop()
    ctx.wait_until(lambda: agent.status()["ActiveSessions"] == 0, 60, "every session to end at the agent",
                   interval=0.5, describe=lambda: str(agent.status()["ActiveSessions"]))
    ctx.wait_until(lambda: len(established_to(topo.ingest.port)) == 1, 20,
                   "only the Control connection to be left", describe=lambda: str(len(established_to(topo.ingest.port))))
    ctx.step("devices stopped: all sessions ended at the agent and the Data connections closed in %.1f s"
             % (time.monotonic() - t))


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_scale", __doc__))
