#!/usr/bin/python3
"""--site-id is sent as `sid`, and the backend's registry keeps two devices
with the same address at two sites apart.

Two agents, --site-id 1 and --site-id 2 (the second through the
environment, KENTIK_SITE=2), one kbgp-ingest whose registry holds
127.0.0.7 twice: at site 1 with collector A (127.0.0.2), at site 2 with
collector B (127.0.0.12). Two BIRD routers, both 127.0.0.7, one behind each
agent, announce different prefixes. Each session must land at its own
site's collector: A holds only the first router's prefixes, B only the
second's; /admin/status shows each agent's SiteID.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.bird import BirdCollector, BirdDevice  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import AGENT_IP, COLLECTOR_ASN, Topology  # noqa: E402

DEVICE, DEVICE_ASN = "127.0.0.7", 65007
COLLECTOR_B = "127.0.0.12"


def prefixes_at(collector):
    return set(collector.peer_routes(DEVICE))


def test(ctx):
    topo = Topology(ctx)
    collector_a = topo.start_collector([(DEVICE, DEVICE_ASN)])
    collector_b = BirdCollector(ctx, COLLECTOR_B, ctx.free_port(COLLECTOR_B), COLLECTOR_ASN,
                                [(DEVICE, DEVICE_ASN)], name="collector_b").start()
    ctx.step("collector B BIRD on %s:%d" % (COLLECTOR_B, collector_b.port))
    topo.start_ingest([
        {"device_ip": DEVICE, "site_id": 1, "device_id": 71, "device_name": "site1-router",
         "collector": "%s:%d" % (collector_a.ip, collector_a.port)},
        {"device_ip": DEVICE, "site_id": 2, "device_id": 72, "device_name": "site2-router",
         "collector": "%s:%d" % (COLLECTOR_B, collector_b.port)},
    ])
    ctx.step("registry: %s at site 1 -> collector A, at site 2 -> collector B" % DEVICE)
    agent1 = topo.start_agent(name="kbgp-site1", extra_args=["--site-id", "1"])
    os.environ["KENTIK_SITE"] = "2"
    try:
        agent2 = topo.start_agent(name="kbgp-site2")
    finally:
        del os.environ["KENTIK_SITE"]
    for agent, site in ((agent1, 1), (agent2, 2)):
        got = agent.status()["Config"]["SiteID"]
        ctx.check(got == site, "%s reports SiteID %r, want %d" % (agent.name, got, site))

    routes1 = make_routes(30, 3)
    routes2 = [r for r in make_routes(80, 8) if r.index >= 40]  # disjoint from routes1
    dev1 = BirdDevice(ctx, DEVICE, DEVICE_ASN, routes1, AGENT_IP, agent1.listen_port, COLLECTOR_ASN,
                      name="router_site1").start()
    dev2 = BirdDevice(ctx, DEVICE, DEVICE_ASN, routes2, AGENT_IP, agent2.listen_port, COLLECTOR_ASN,
                      name="router_site2").start()
    ctx.step("two routers %s (AS %d): %d prefixes behind the site-1 agent, %d behind the site-2 agent"
             % (DEVICE, DEVICE_ASN, len(routes1), len(routes2)))

    want1 = {r.prefix for r in routes1}
    want2 = {r.prefix for r in routes2}
    seen = [None, None]

    def landed():
        seen[0], seen[1] = prefixes_at(collector_a), prefixes_at(collector_b)
        return seen[0] == want1 and seen[1] == want2 and dev1.established() and dev2.established()
    ctx.wait_until(landed, 40, "each router's prefixes at its own site's collector", interval=0.5,
                   poke=lambda: [d.poke() for d in (dev1, dev2, collector_a, collector_b)],
                   describe=lambda: "A holds %s of %d (%d foreign), B holds %s of %d (%d foreign)" % (
                       len(seen[0] & want1) if seen[0] is not None else None, len(want1),
                       len(seen[0] - want1) if seen[0] is not None else 0,
                       len(seen[1] & want2) if seen[1] is not None else None, len(want2),
                       len(seen[1] - want2) if seen[1] is not None else 0))
    ctx.step("collector A holds exactly the site-1 router's %d prefixes, collector B exactly the site-2 "
             "router's %d" % (len(want1), len(want2)))
    for agent, name in ((agent1, "site1-router"), (agent2, "site2-router")):
        detail = agent.session(DEVICE)
        ctx.check(detail.get("DeviceName") == name, "%s: the session's DeviceName is %r, want %r (the "
                  "backend answered for the wrong site)" % (agent.name, detail.get("DeviceName"), name))
    ctx.step("each agent's session names its own site's device (site1-router, site2-router)")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_site_id", __doc__))
