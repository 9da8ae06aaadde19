"""A whole test network on loopback:

  direct:  device (127.0.0.x) ───────────────────────────────────────▶ collector BIRD (127.0.0.2)
  kbgp:    device (127.0.0.x) ─▶ kbgp (127.0.0.1) ══TLS══▶ kbgp-ingest ─▶ collector BIRD (127.0.0.2)

kbgp-ingest connects to the collector from the device's own address
(registry `source_ip`), so the collector's neighbor is the device either way.
"""

from .bird import BirdCollector, BirdDevice, normalize_attrs
from .errors import TestFailure
from .frr import FrrDevice
from .kbgp import TOKEN, Agent, Ingest
from .routes import split_by_family
from .tls import make_tls

AGENT_IP = "127.0.0.1"
COLLECTOR_IP = "127.0.0.2"
COLLECTOR_ASN = 65001


class Topology:
    def __init__(self, ctx, path=None, tag=""):
        """`tag` prefixes the collector's file names, so that several
        topologies can share one temp dir."""
        self.ctx = ctx
        self.path = path or ctx.path_kind
        self.tag = tag
        self.collector = None
        self.tls = None
        self.ingest = None
        self.agents = []
        self.devices = []

    # -- starting the parts ------------------------------------------------
    def start_collector(self, peers):
        """peers: [(device ip, device asn)] the collector will accept, or
        (ip, asn, extra BIRD statements for that neighbor)."""
        port = self.ctx.free_port(COLLECTOR_IP)
        self.collector = BirdCollector(self.ctx, COLLECTOR_IP, port, COLLECTOR_ASN, peers,
                                       name=self.tag + "collector")
        self.ctx.step("collector BIRD on %s:%d (AS %d), peers %s" % (
            COLLECTOR_IP, port, COLLECTOR_ASN, _ip_list([p[0] for p in peers])))
        return self.collector.start()

    def start_ingest(self, registered_ips, **kw):
        """kbgp-ingest with fresh TLS material; `registered_ips` are the
        devices in its registry, all terminating at the collector (or dicts
        of registry fields, see Ingest.write_registry)."""
        self._need_kbgp()
        self.tls = make_tls(self.ctx.path("tls"))
        port = self.ctx.free_port(AGENT_IP)
        self.ingest = Ingest(self.ctx, self.ctx.binaries, port, self.tls, registered_ips,
                             "%s:%d" % (COLLECTOR_IP, self.collector.port), **kw)
        self.ctx.step("kbgp-ingest on 127.0.0.1:%d (TLS), registry: %s" % (
            port, _ip_list([d["device_ip"] if isinstance(d, dict) else d for d in registered_ips])))
        return self.ingest.start()

    def start_agent(self, name="kbgp", token=TOKEN, listeners=1, **kw):
        """kbgp aimed at the topology's kbgp-ingest, listening on
        `listeners` ports of 127.0.0.1 (at most 16)."""
        self._need_kbgp()
        more = [self.ctx.free_port(AGENT_IP) for _ in range(listeners - 1)]
        agent = Agent(self.ctx, self.ctx.binaries, self.ctx.free_port(AGENT_IP), self.ingest.port,
                      self.tls, self.ctx.free_port(AGENT_IP), token=token, name=name,
                      more_listen_ports=more, **kw)
        self.ctx.step("%s listening on %s:%d, status API on :%d, target 127.0.0.1:%d" % (
            name, AGENT_IP, agent.listen_port, agent.metrics_port, self.ingest.port))
        agent.start()
        self.agents.append(agent)
        return agent

    def start_device(self, kind, ip, asn, routes, agent=None, password=None):
        """A BIRD ("bird") or FRR ("frr") device announcing `routes`, peering
        with `agent` (kbgp path; default: the first agent) or directly with
        the collector (direct path); `password`: its TCP-MD5 key."""
        if self.path == "kbgp":
            agent = agent or self.agents[0]
            peer_ip, peer_port = AGENT_IP, agent.listen_port
        else:
            peer_ip, peer_port = COLLECTOR_IP, self.collector.port
        cls = {"bird": BirdDevice, "frr": FrrDevice}[kind]
        dev = cls(self.ctx, ip, asn, routes, peer_ip, peer_port, COLLECTOR_ASN, password=password)
        v4, v6 = split_by_family(routes)
        self.ctx.step("%s device %s (AS %d) -> %s:%d, %d IPv4 + %d IPv6 routes" % (
            kind, ip, asn, peer_ip, peer_port, len(v4), len(v6)))
        dev.start()
        self.devices.append(dev)
        return dev

    def start_standard(self, kind, ip, asn, routes, agent_log_level="info"):
        """Collector, then (kbgp path) kbgp-ingest and kbgp, then the device."""
        self.start_collector([(ip, asn)])
        if self.path == "kbgp":
            self.start_ingest([ip])
            self.start_agent(log_level=agent_log_level)
        return self.start_device(kind, ip, asn, routes)

    def _need_kbgp(self):
        if self.path != "kbgp" or self.ctx.binaries is None:
            raise TestFailure("the kbgp path needs the kbgp binaries")

    # -- waiting and checking ----------------------------------------------
    def poke(self, device=None):
        for d in ([device] if device else self.devices):
            d.poke()
        if self.collector:
            self.collector.poke()

    def describe_session(self, device):
        parts = []
        try:
            parts.append("device %s: %s" % (device.ip, device.session_state()))
        except Exception as e:
            parts.append("device %s: (%s)" % (device.ip, e))
        try:
            info = self.collector.peer_info(device.ip)
            parts.append("collector: %s%s" % (info["state"], ", last error: %s" % info["last_error"]
                                                if info["last_error"] else ""))
        except Exception as e:
            parts.append("collector: (%s)" % e)
        for a in self.agents:
            if not a.proc.alive():
                parts.append("%s exited with status %s" % (a.name, a.proc.exited_with()))
                continue
            try:
                st = a.status()
                parts.append("%s: ActiveSessions %s, ControlStream.Connected %s" % (
                    a.name, st.get("ActiveSessions"), (st.get("ControlStream") or {}).get("Connected")))
            except Exception as e:
                parts.append("%s: status API: %s" % (a.name, e))
        if self.ingest and not self.ingest.proc.alive():
            parts.append("kbgp-ingest exited with status %s" % self.ingest.proc.exited_with())
        return "; ".join(parts)

    def wait_established(self, device, timeout=30):
        how = "through kbgp" if self.path == "kbgp" else "directly"

        def up():
            return device.established() and self.collector.peer_info(device.ip)["state"] == "Established"
        self.ctx.wait_until(up, timeout, "the BGP session of %s to reach Established at both ends %s"
                            % (device.ip, how), interval=0.25, describe=lambda: self.describe_session(device))
        # The OPEN the device got must be the collector's, relayed.
        rid = device.peer_router_id()
        if rid != self.collector.ip:
            raise TestFailure("device %s got an OPEN with BGP identifier %s, want the collector's %s"
                              % (device.ip, rid, self.collector.ip))
        self.ctx.step("BGP session %s <-> collector Established (%s); the device sees router id %s"
                      % (device.ip, how, rid))

    def collector_counts(self, device):
        r = self.collector.peer_info(device.ip)["routes"]
        return r.get("ipv4", 0), r.get("ipv6", 0)

    def wait_routes(self, device, routes, timeout=60):
        """Waits until the collector's counts for `device` equal those of
        `routes`."""
        v4, v6 = split_by_family(routes)
        want = (len(v4), len(v6))
        seen = [None]

        def done():
            seen[0] = self.collector_counts(device)
            return seen[0] == want
        self.ctx.wait_until(done, timeout, "the collector to hold %d IPv4 + %d IPv6 routes from %s"
                            % (want + (device.ip,)), interval=0.3, poke=lambda: self.poke(device),
                            describe=lambda: "%s; %s" % ("counts %s" % (seen[0],), self.describe_session(device)))
        self.ctx.step("collector holds %d IPv4 + %d IPv6 routes from %s" % (want + (device.ip,)))

    def check_routes(self, device, routes):
        """The collector holds exactly `routes` from `device` (same prefix
        sets, same counts), each with exactly the attributes the device was
        configured to send, learned from the device's address."""
        got = self.collector.peer_routes(device.ip)
        want = {r.prefix: r for r in routes}
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        if missing or extra:
            raise TestFailure("collector's prefix set differs: %d missing (e.g. %s), %d unexpected (e.g. %s)"
                              % (len(missing), missing[:5], len(extra), extra[:5]))
        bad = []
        for prefix, r in want.items():
            g = got[prefix]
            have = normalize_attrs(g["attrs"])
            expect = device.expected_attrs(r)
            problems = []
            if have != expect:
                for k in sorted(set(have) | set(expect)):
                    if have.get(k) != expect.get(k):
                        problems.append("%s: got %r, want %r" % (k, have.get(k), expect.get(k)))
            if g["from"] != device.ip:
                problems.append("learned from %s, want %s" % (g["from"], device.ip))
            if g["alternatives"]:
                problems.append("%d extra routes for this prefix" % g["alternatives"])
            if problems:
                bad.append("%s (class %d): %s" % (prefix, r.cls, "; ".join(problems)))
        if bad:
            raise TestFailure("%d of %d routes at the collector have wrong attributes, e.g.:\n  %s"
                              % (len(bad), len(want), "\n  ".join(bad[:8])))
        v4, v6 = split_by_family(routes)
        self.ctx.step("collector's routes from %s match exactly: %d IPv4 + %d IPv6 prefixes, every "
                      "attribute set as configured" % (device.ip, len(v4), len(v6)))


def _ip_list(ips, limit=8):
    """"a, b, c" -- or the first few and a count, for long lists."""
    if len(ips) <= limit:
        return ", ".join(ips)
    return "%s, ... (%d in all)" % (", ".join(ips[:limit]), len(ips))
