"""Many devices through one agent, shared by tests/e2e/test_scale.py and
bench/sessions: collector BIRDs with one passive neighbor per device,
kbgp-ingest with every device registered, kbgp listening on 16 ports (BIRD
runs one session per neighbor address and port, so a BIRD process holds at
most 16 sessions), and a DeviceFleet of BIRD processes playing the devices
(127.<block>.x.y, 4-byte ASNs), started with every session disabled.

The test bed, not kbgp, limits how fast sessions may arrive: BIRD accepts
with a listen backlog of 8, so a thousand connections from kbgp-ingest to
one collector within a second overflow its accept queue, and the dropped
ones come back only after TCP's SYN/ACK retries (up to ~2 minutes). So the
devices are spread over several collectors (one per 250), and bring_up()
enables them one BIRD process (16 sessions) at a time, 50 ms apart: 1,000
sessions arrive within ~3 s."""

import resource
import time

from .bird import BirdCollector, DeviceFleet, protocol_name, scale_addresses, scale_asn
from .errors import SkipTest
from .topology import COLLECTOR_ASN, Topology

LISTENERS = 16
PER_COLLECTOR = 250
PACE_SECONDS = 0.05  # between two BIRD processes' worth of sessions


def raise_fd_limit(ctx, need):
    """The collector BIRD and kbgp-ingest hold a socket per session: more
    than the usual 1024 descriptors. Children inherit the runner's limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise SkipTest("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


class Scale:
    def __init__(self, ctx, count, block=12, prefixes=("10.99.0.0/24",), ingest_log_level="info",
                 agent_args=()):
        raise_fd_limit(ctx, 4 * count + 1024)
        self.ctx = ctx
        self.ips = scale_addresses(count, block=block)
        self.sessions = [(ip, scale_asn(i)) for i, ip in enumerate(self.ips)]
        self.topo = Topology(ctx)
        self.collectors = [self.topo.start_collector(self.sessions[:PER_COLLECTOR])]
        for k, first in enumerate(range(PER_COLLECTOR, count, PER_COLLECTOR), start=1):
            ip = "127.0.2.%d" % (k + 1)
            c = BirdCollector(ctx, ip, ctx.free_port(ip), COLLECTOR_ASN,
                              self.sessions[first:first + PER_COLLECTOR], name="collector%d" % k)
            self.collectors.append(c.start())
        if len(self.collectors) > 1:
            ctx.step("%d collector BIRDs, %d devices each" % (len(self.collectors), PER_COLLECTOR))
        self.ingest = self.topo.start_ingest(
            [{"device_ip": ip, "device_id": 100000 + i, "device_name": "r%d" % i,
              "collector": "%s:%d" % (self.collectors[i // PER_COLLECTOR].ip,
                                      self.collectors[i // PER_COLLECTOR].port)}
             for i, ip in enumerate(self.ips)], log_level=ingest_log_level)
        self.agent = self.topo.start_agent(listeners=LISTENERS, extra_args=list(agent_args))
        ctx.wait_until(self.agent.control_connected, 15, "the Control stream to connect")
        self.fleet = DeviceFleet(ctx, "fleet", self.sessions, list(prefixes), self.agent.endpoints(),
                                 COLLECTOR_ASN, enabled=0).start()
        ctx.step("%d BIRD processes with %d device sessions, all disabled" % (len(self.fleet.birds), count))

    def established_at_collector(self):
        states = {}
        for c in self.collectors:
            states.update(c.protocol_states())
        return sum(1 for ip in self.ips if states.get(protocol_name(ip)) == "Established")

    def bring_up(self, bound):
        """Enables every session (one birdc per BIRD process, PACE_SECONDS
        apart); returns the seconds from the first enable until all are
        Established at the collectors."""
        t0 = time.monotonic()
        for b in self.fleet.birds:
            b.enable_all()
            time.sleep(PACE_SECONDS)
        ctx = self.ctx
        ctx.step("all %d sessions enabled (%.1f s of birdc)" % (len(self.ips), time.monotonic() - t0))
        last = [0, -1.0]

        def all_up():
            n = self.established_at_collector()
            if n != last[0] or time.monotonic() - last[1] > 10:
                ctx.step("  %4d Established at the collector after %.1f s" % (n, time.monotonic() - t0))
                last[0], last[1] = n, time.monotonic()
            return n == len(self.ips)
        ctx.wait_until(all_up, bound, "all %d sessions Established at the collector" % len(self.ips),
                       interval=0.5, describe=lambda: "%d up; agent %s" % (
                           last[0], self.agent.status()["Counters"]))
        return time.monotonic() - t0
