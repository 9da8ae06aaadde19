#!/usr/bin/python3
"""BGP extended messages (RFC 8654), end to end.

The agent must let messages longer than 4,096 bytes through exactly when
both OPENs carried the Extended Message capability (code 6), and cut a
session whose device sends one otherwise.

Positive, with real BIRD 2 at both ends (`enable extended messages on`):
device 127.0.0.3 announces 500 IPv4 + 50 IPv6 routes and two big ones,
10.200.1.0/24 with 400 large and 100 standard communities (an UPDATE of
5,255 bytes) and 10.200.2.0/24 with 5,373 large communities (an UPDATE of
64,527 bytes, the most BIRD sends: it keeps 1 KiB of every UPDATE for
NLRI and withdraws a route whose attributes need more, "Attribute list too
long"); the collector sends it 10.201.0.0/24 with 2,000 large communities
(24,051 bytes). Beside it a BIRD device 127.0.0.4 without extended
messages (the collector offers them). A device of our own, 127.0.0.7
(kbgptest/resilience.py MiniSpeaker), with capability 6 sends an UPDATE
of exactly 65,535 bytes, the longest there is (5,457 large communities).
Checked: the collector holds exactly the devices' routes with every
attribute (every community of the big ones, in full; 127.0.0.7's route
with all its large communities, its session up), the device holds the
collector's big route with every large community; a packet socket on lo
(kbgptest/capture.py TcpStreams) sees each big route cross the wire in one
UPDATE of the expected length, in both directions, and both OPENs carry
capability 6; the agent's debug lines "device OPEN" / "backend OPEN" say
extended-message "1" for both sides ("0" for 127.0.0.4's device side);
/admin/sessions/127.0.0.3 counts exactly the messages and bytes seen on
the wire each way; no framing error is counted.

Negative, with devices of our own (MiniSpeaker; BIRD never sends a
message the session did not negotiate: it withdraws the route), each after a
small UPDATE that reaches the collector:
- 127.0.0.5 without capability 6, the collector with it;
- 127.0.0.6 with capability 6, the collector without it;
each then sends a 4,995-byte UPDATE: the agent resets the connection, logs
"malformed BGP framing from device" with reason length_above_maximum and
the device's peer-addr, counts it in /admin/status and /metrics; the
collector never gets the message.

Throughout, both BIRD devices keep exactly their routes in one continuous
session at both ends.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import re
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import badinput, resilience  # noqa: E402
from kbgptest.bgpwire import BadFraming, split_messages  # noqa: E402
from kbgptest.bird import BirdCollector, BirdDevice, normalize_attrs, protocol_name  # noqa: E402
from kbgptest.capture import TcpStreams  # noqa: E402
from kbgptest.resilience import SessionLog, bgp_open  # noqa: E402
from kbgptest.routes import Route, split_by_family  # noqa: E402
from kbgptest.topology import AGENT_IP, COLLECTOR_ASN, COLLECTOR_IP, Topology  # noqa: E402

MAX_STD = 4096
MAX_EXT = 65535
CAP_EXTENDED_MESSAGE = 6

EXT_DEVICE = ("127.0.0.3", 65003)    # BIRD, extended messages on
STD_DEVICE = ("127.0.0.4", 65004)    # BIRD, extended messages off
NO_EXT_SPEAKER = ("127.0.0.5", 65005)    # no capability 6; the collector has it
PEER_NO_EXT_SPEAKER = ("127.0.0.6", 65006)  # capability 6; the collector has it not
MAX_SPEAKER = ("127.0.0.7", 65007)   # capability 6 at both ends, an UPDATE of 65,535 bytes


class BigRoute:
    """A route with `large` large communities (asn, tag, i) and `standard`
    communities (asn, i). Sent alone by BIRD over eBGP with 4-octet ASNs,
    its UPDATE is 51 + 12 * large bytes (header 19, two length fields 4,
    ORIGIN 4, AS_PATH 9, NEXT_HOP 7, LARGE_COMMUNITY 4 + 12 * large, NLRI
    4), plus 4 * standard and the COMMUNITY header (3 bytes, 4 with the
    extended length beyond 255 bytes)."""

    def __init__(self, route, asn, tag, large, standard=0):
        self.route = route
        self.asn = asn
        self.tag = tag
        self.large = large
        self.standard = standard

    @property
    def prefix(self):
        return self.route.prefix

    def large_list(self):
        return ["(%d,%d,%d)" % (self.asn, self.tag, i) for i in range(self.large)]

    def standard_list(self):
        return ["(%d,%d)" % (self.asn, i + 1) for i in range(self.standard)]

    def statements(self):
        s = ["bgp_large_community.add((%d,%d,%d));" % (self.asn, self.tag, i) for i in range(self.large)]
        s += ["bgp_community.add((%d,%d));" % (self.asn, i + 1) for i in range(self.standard)]
        return " ".join(s)

    def update_length(self):
        n = 51 + 12 * self.large
        if self.standard:
            n += (4 if 4 * self.standard > 255 else 3) + 4 * self.standard
        return n


def v4_route(prefix):
    _, b, c, _ = (int(x) for x in prefix.split("/")[0].split("."))
    return Route(b * 256 + c, prefix, 4)


DEVICE_BIG = [
    BigRoute(v4_route("10.200.1.0/24"), EXT_DEVICE[1], 1, 400, 100),
    # 51 + 12 * 5373 = 64,527: BIRD's attributes may take all of a
    # message but 1 KiB (MAX_ATTRS_LENGTH in its proto/bgp/packets.c, kept
    # for NLRI): 24 + 12 * 5373 = 64,500 <= 64,511.
    BigRoute(v4_route("10.200.2.0/24"), EXT_DEVICE[1], 2, 5373),
]
COLLECTOR_BIG = BigRoute(v4_route("10.201.0.0/24"), COLLECTOR_ASN, 7, 2000)


def pool(first4):
    return resilience.churn_pool(500, 50, first4=first4, first6=first4 // 10)


def with_extended(text, protocol):
    """`enable extended messages on` in BIRD config block `protocol bgp NAME {`."""
    head = "protocol bgp %s {\n" % protocol
    if head not in text:
        raise kbgptest.TestFailure("no %r in a BIRD config" % head.strip())
    return text.replace(head, head + "  enable extended messages on;\n", 1)


class ExtCollector(BirdCollector):
    """The collector, offering extended messages to the peers in
    `extended`, and sending COLLECTOR_BIG (a static route of its own) to
    the peer `export_to` only."""

    def __init__(self, ctx, ip, port, asn, peers, extended, export_to):
        super().__init__(ctx, ip, port, asn, peers)
        self.extended = set(extended)
        self.export_to = export_to

    def write_config(self):
        super().write_config()
        with open(self.conf) as f:
            text = f.read()
        for ip in self.extended:
            text = with_extended(text, protocol_name(ip))
        block = re.compile(r"(protocol bgp %s \{\n.*?)ipv4 \{ import all; export none; \};"
                           % protocol_name(self.export_to), re.S)
        text, n = block.subn(r'\1ipv4 { import all; export where proto = "own4"; };', text)
        if n != 1:
            raise kbgptest.TestFailure("the collector's config has no ipv4 channel for %s" % self.export_to)
        text += "protocol static own4 {\n  ipv4;\n  route %s blackhole { %s };\n}\n" % (
            COLLECTOR_BIG.prefix, COLLECTOR_BIG.statements())
        with open(self.conf, "w") as f:
            f.write(text)


class ExtBirdDevice(BirdDevice):
    """A BIRD device with extended messages on (or off: `extended`), whose
    routes may include BigRoutes, importing what the collector sends."""

    def __init__(self, ctx, ip, asn, routes, big, extended, peer_port):
        self.big = {b.prefix: b for b in big}
        self.extended = extended
        super().__init__(ctx, ip, asn, list(routes) + [b.route for b in big], AGENT_IP, peer_port,
                         COLLECTOR_ASN)

    def _route_line(self, r):
        b = self.big.get(r.prefix)
        if b is None:
            return super()._route_line(r)
        return "  route %s blackhole { %s };" % (r.prefix, b.statements())

    def expected_attrs(self, r):
        b = self.big.get(r.prefix)
        if b is None:
            return super().expected_attrs(r)
        attrs = {"origin": "IGP", "as_path": str(self.asn), "local_pref": "100", "next_hop": self.next_hop4,
                 "large_community": " ".join(b.large_list())}
        if b.standard:
            attrs["community"] = " ".join(b.standard_list())
        return normalize_attrs(attrs)

    def write_config(self):
        super().write_config()
        with open(self.conf) as f:
            text = f.read()
        if self.extended:
            text = with_extended(text, self.proto)
        text = text.replace("ipv4 { import none;", "ipv4 { import all;", 1)
        with open(self.conf, "w") as f:
            f.write(text)


# ---- BGP on the wire ----------------------------------------------------------

class CaptureError(Exception):
    """The capture does not (yet) hold what is asked: waits retry on it."""


def open_capabilities(msg):
    """The capability codes of an OPEN (RFC 5492; no RFC 9072 form here)."""
    codes = []
    opt_len = msg[28]
    pos, end = 29, 29 + opt_len
    while pos + 2 <= end:
        ptype, plen = msg[pos], msg[pos + 1]
        if ptype == 2:
            c = pos + 2
            while c + 2 <= pos + 2 + plen:
                codes.append(msg[c])
                c += 2 + msg[c + 1]
        pos += 2 + plen
    return codes


def update_ipv4_nlri(msg):
    """The IPv4 prefixes an UPDATE announces in its NLRI field."""
    withdrawn = struct.unpack("!H", msg[19:21])[0]
    pos = 21 + withdrawn
    attrs_len = struct.unpack("!H", msg[pos:pos + 2])[0]
    pos += 2 + attrs_len
    out = []
    while pos < len(msg):
        plen = msg[pos]
        nbytes = (plen + 7) // 8
        addr = msg[pos + 1:pos + 1 + nbytes] + b"\x00" * (4 - nbytes)
        out.append("%s/%d" % (socket.inet_ntoa(addr), plen))
        pos += 1 + nbytes
    return out


class Direction:
    """One direction of one captured connection, as BGP messages."""

    def __init__(self, streams, key):
        self.key = key
        data, hole = streams.stream(key)
        if hole is not None:
            raise CaptureError("the capture of %s:%d -> %s:%d misses bytes from offset %d on"
                                       % (key + (hole,)))
        self.bytes = len(data)
        try:
            # [(type, length, message)]
            self.messages = [(t, len(m), m) for t, m in split_messages(data)]
        except BadFraming as e:
            raise CaptureError("%s:%d -> %s:%d: %s" % (key + (e,)))

    def open_caps(self):
        opens = [m for t, _, m in self.messages if t == 1]
        return open_capabilities(opens[0]) if opens else None

    def update_carrying(self, prefix):
        """(length, number of prefixes) of the UPDATE announcing `prefix`."""
        for t, length, m in self.messages:
            if t == 2:
                nlri = update_ipv4_nlri(m)
                if prefix in nlri:
                    return length, len(nlri)
        return None

    def longest(self):
        return max((length for _, length, _ in self.messages), default=0)


def wire(streams, ip, agent_port):
    """(up, down) Directions of the one connection from `ip` to the agent."""
    keys = streams.connections(ip)
    up = [k for k in keys if k[0] == ip and k[3] == agent_port]
    if len(up) != 1:
        raise CaptureError("the capture holds %d connections from %s to the agent, want 1: %s"
                                   % (len(up), ip, keys))
    down = (up[0][2], up[0][3], up[0][0], up[0][1])
    if down not in keys:
        raise CaptureError("the capture holds no bytes from the agent to %s:%d" % up[0][:2])
    return Direction(streams, up[0]), Direction(streams, down)


# ---- the test -----------------------------------------------------------------

def test(ctx):
    topo = Topology(ctx)
    birds = [EXT_DEVICE, STD_DEVICE]
    speakers = [NO_EXT_SPEAKER, PEER_NO_EXT_SPEAKER, MAX_SPEAKER]
    port = ctx.free_port(COLLECTOR_IP)
    extended = [EXT_DEVICE[0], STD_DEVICE[0], NO_EXT_SPEAKER[0], MAX_SPEAKER[0]]
    topo.collector = ExtCollector(ctx, COLLECTOR_IP, port, COLLECTOR_ASN, birds + speakers, extended,
                                  EXT_DEVICE[0])
    ctx.step("collector BIRD on %s:%d (AS %d): extended messages offered to %s, not to %s; sends %s "
             "(%d large communities) to %s" % (COLLECTOR_IP, port, COLLECTOR_ASN, ", ".join(extended),
                                               PEER_NO_EXT_SPEAKER[0], COLLECTOR_BIG.prefix,
                                               COLLECTOR_BIG.large, EXT_DEVICE[0]))
    collector = topo.collector.start()
    topo.start_ingest([ip for ip, _ in birds + speakers])
    agent = topo.start_agent(log_level="debug")
    streams = TcpStreams(agent.listen_port).start()
    try:
        run(ctx, topo, agent, collector, streams)
    finally:
        streams.stop()


def run(ctx, topo, agent, collector, streams):
    ext_pool, std_pool = pool(0), pool(1000)
    ext_dev = start_device(ctx, topo, agent, EXT_DEVICE, ext_pool, DEVICE_BIG, True)
    std_dev = start_device(ctx, topo, agent, STD_DEVICE, std_pool, [], False)
    ext_routes = ext_pool + [b.route for b in DEVICE_BIG]
    for dev, routes in ((ext_dev, ext_routes), (std_dev, std_pool)):
        topo.wait_established(dev)
        resilience.wait_exact(ctx, topo, dev, routes)
    logs = []
    for dev in (ext_dev, std_dev):
        logs.append((SessionLog(dev, dev.proto), "device %s" % dev.ip))
        logs.append((SessionLog(collector, protocol_name(dev.ip)), "the collector's session with %s" % dev.ip))
    for b in DEVICE_BIG:
        ctx.step("collector holds %s from %s with all %d large and %d standard communities"
                 % (b.prefix, ext_dev.ip, b.large, b.standard))

    check_device_got_collector_route(ctx, topo, ext_dev)
    check_open_logs(ctx, agent, ext_dev.ip, device=True, backend=True)
    check_open_logs(ctx, agent, std_dev.ip, device=False, backend=True)
    check_wire(ctx, agent, streams, ext_dev)
    max_speaker = longest_update(ctx, topo, agent, collector, streams)
    c = badinput.counters(agent)
    ctx.check(c["FramingErrors"] == 0 and c["FramingErrorsByReason"]["length_above_maximum"] == 0,
              "framing errors counted with only well-behaved devices: FramingErrors %s, by reason %s"
              % (c["FramingErrors"], c["FramingErrorsByReason"]))
    ctx.step("no framing error counted (FramingErrors 0)")

    for (ip, asn), device_ext, collector_ext in ((NO_EXT_SPEAKER, False, True),
                                                (PEER_NO_EXT_SPEAKER, True, False)):
        oversized(ctx, topo, agent, collector, ip, asn, device_ext, collector_ext)

    for dev, routes in ((ext_dev, ext_routes), (std_dev, std_pool)):
        topo.check_routes(dev, routes)
    ctx.check(not max_speaker.closed.is_set() and collector.peer_info(MAX_SPEAKER[0])["state"] == "Established",
              "the session of %s (the 65,535-byte UPDATE) ended" % MAX_SPEAKER[0])
    max_speaker.close()
    for log, what in logs:
        log.check_continuous(ctx, what)
    ctx.step("both BIRD devices kept exactly their routes (the big ones whole) in one continuous "
             "session at both ends")


def start_device(ctx, topo, agent, dev_id, routes, big, extended):
    ip, asn = dev_id
    dev = ExtBirdDevice(ctx, ip, asn, routes, big, extended, agent.listen_port)
    v4, v6 = split_by_family(routes)
    ctx.step("BIRD device %s (AS %d, extended messages %s) -> %s:%d: %d IPv4 + %d IPv6 routes%s"
             % (ip, asn, "on" if extended else "off", AGENT_IP, agent.listen_port, len(v4), len(v6),
                "".join(", %s with %d large + %d standard communities (UPDATE of %d bytes)"
                        % (b.prefix, b.large, b.standard, b.update_length()) for b in big)))
    dev.start()
    topo.devices.append(dev)
    return dev


def check_device_got_collector_route(ctx, topo, dev):
    b = COLLECTOR_BIG
    got = [None]

    def arrived():
        got[0] = dev.routes().get(b.prefix)
        return got[0] is not None
    ctx.wait_until(arrived, 30, "device %s to hold the collector's %s" % (dev.ip, b.prefix),
                   poke=lambda: topo.poke(dev))
    attrs = normalize_attrs(got[0]["attrs"])
    want = normalize_attrs({"large_community": " ".join(b.large_list())})["large_community"]
    ctx.check(attrs.get("large_community") == want,
              "device %s holds %s with %d large communities, want the collector's %d" % (
                  dev.ip, b.prefix, len(attrs.get("large_community", "").split()), b.large))
    # The device's neighbor is the agent: BIRD names it as the source.
    ctx.check(attrs.get("as_path") == str(COLLECTOR_ASN) and got[0]["from"] == AGENT_IP,
              "device %s holds %s with AS path %r from %s" % (dev.ip, b.prefix, attrs.get("as_path"),
                                                             got[0]["from"]))
    ctx.step("device %s holds the collector's %s with all %d large communities, AS path %d"
             % (dev.ip, b.prefix, b.large, COLLECTOR_ASN))


def open_log(agent, message, ip):
    for line, obj in agent.log.records():
        if obj and obj.get("message") == message and str(obj.get("peer-addr", "")).startswith(ip + ":"):
            return obj
    return None


def check_open_logs(ctx, agent, ip, device, backend):
    """The agent's debug lines about both OPENs of `ip`'s session say
    extended-message `device` / `backend`."""
    for message, want in (("device OPEN", device), ("backend OPEN", backend)):
        obj = ctx.wait_until(lambda: open_log(agent, message, ip), 10,
                             "a %r line with peer-addr %s in the agent's log" % (message, ip))
        ctx.check(str(obj.get("extended-message")).lower() in (("1", "true") if want else ("0", "false")),
                  "the agent logged %r for %s with extended-message %r, want %s"
                  % (message, ip, obj.get("extended-message"), want))
    ctx.step("agent logged for %s: device OPEN extended-message %s, backend OPEN extended-message %s"
             % (ip, str(device).lower(), str(backend).lower()))


def check_wire(ctx, agent, streams, dev):
    """What crossed the wire between `dev` and the agent: both OPENs with
    capability 6, each big route in one UPDATE of its expected length, and
    the agent's per-session counts equal to the capture's."""
    seen = {}

    def counts_agree():
        up, down = wire(streams, dev.ip, agent.listen_port)
        s = agent.session(dev.ip)
        seen["up"], seen["down"], seen["s"] = up, down, s
        return (s["MessagesUp"], s["BytesUp"], s["MessagesDown"], s["BytesDown"]) == \
            (len(up.messages), up.bytes, len(down.messages), down.bytes)
    ctx.wait_until(counts_agree, 15, "the agent's message and byte counts for %s to equal the capture's"
                   % dev.ip, interval=0.5,
                   describe=lambda: "agent %s; wire up %d msgs %d bytes, down %d msgs %d bytes" % (
                       {k: seen["s"].get(k) for k in ("MessagesUp", "BytesUp", "MessagesDown", "BytesDown")},
                       len(seen["up"].messages), seen["up"].bytes, len(seen["down"].messages),
                       seen["down"].bytes) if seen else "nothing captured")
    up, down, s = seen["up"], seen["down"], seen["s"]
    for what, d in (("device", up), ("collector (relayed)", down)):
        caps = d.open_caps()
        ctx.check(caps is not None and CAP_EXTENDED_MESSAGE in caps,
                  "the %s's OPEN on the wire has capabilities %s, want 6 (Extended Message) among them"
                  % (what, caps))
    for b in DEVICE_BIG:
        u = up.update_carrying(b.prefix)
        ctx.check(u is not None, "no UPDATE announcing %s from %s on the wire" % (b.prefix, dev.ip))
        ctx.check(u[0] == b.update_length() and u[0] > MAX_STD,
                  "the UPDATE announcing %s was %d bytes on the wire, want %d" % (b.prefix, u[0],
                                                                                 b.update_length()))
        ctx.step("on the wire, %s -> agent: %s in one UPDATE of %d bytes (%d prefix%s in it)"
                 % (dev.ip, b.prefix, u[0], u[1], "" if u[1] == 1 else "es"))
    u = down.update_carrying(COLLECTOR_BIG.prefix)
    ctx.check(u is not None and u[0] == COLLECTOR_BIG.update_length(),
              "the UPDATE announcing the collector's %s to %s was %s on the wire, want one of %d bytes"
              % (COLLECTOR_BIG.prefix, dev.ip, u, COLLECTOR_BIG.update_length()))
    ctx.step("on the wire, agent -> %s: %s in one UPDATE of %d bytes" % (dev.ip, COLLECTOR_BIG.prefix, u[0]))
    want = max(b.update_length() for b in DEVICE_BIG)
    ctx.check(up.longest() == want, "the longest message from %s was %d bytes, want %d"
              % (dev.ip, up.longest(), want))
    ctx.step("both OPENs on the wire carry capability 6; /admin/sessions/%s counts exactly the wire's "
             "%d messages / %d bytes up (the longest %d bytes) and %d / %d down (the longest %d)"
             % (dev.ip, s["MessagesUp"], s["BytesUp"], up.longest(), s["MessagesDown"], s["BytesDown"],
                down.longest()))


class UpdateSpeaker(resilience.MiniSpeaker):
    """A device of our own with or without capability 6 that announces
    `first` once Established; send() writes more."""

    def __init__(self, ip, asn, port, extended, first):
        super().__init__(ip, asn, port)
        self.extended = extended
        self.first = first
        self._lock = threading.Lock()  # the test, the reader and the keepalive thread write

    def _open_message(self):
        return bgp_open(self.asn, self.ip, self.hold, extended_message=self.extended)

    def _send(self, message):
        with self._lock:
            self.sock.sendall(message)

    def _on_established(self):
        self._send(self.first)

    send = _send


def longest_update(ctx, topo, agent, collector, streams):
    """127.0.0.7 with capability 6, the collector with it too, sends an
    UPDATE of exactly 65,535 bytes: it arrives whole, the session stays.
    Returns the speaker, still connected (the caller checks and closes)."""
    ip, asn = MAX_SPEAKER
    prefix = "10.212.7.0"
    large = [(asn, 9, i) for i in range(5457)]
    update = badinput.bgp_update_v4(prefix, 24, asn, ip, large)
    ctx.check(len(update) == MAX_EXT, "the longest UPDATE is %d bytes, want %d" % (len(update), MAX_EXT))
    speaker = UpdateSpeaker(ip, asn, agent.listen_port, True, update).start()
    try:
        ctx.wait_until(lambda: speaker.established.is_set() and
                       collector.peer_info(ip)["state"] == "Established", 30,
                       "device %s to reach Established at the collector" % ip,
                       describe=lambda: "device established %s, collector %s" % (
                           speaker.established.is_set(), collector.peer_info(ip)))
        got = [None]

        def arrived():
            got[0] = collector.peer_routes(ip).get(prefix + "/24")
            return got[0] is not None
        ctx.wait_until(arrived, 20, "the collector to hold %s/24 from %s" % (prefix, ip), poke=collector.poke,
                       describe=lambda: "collector %s, device closed %s" % (collector.peer_info(ip),
                                                                             speaker.closed.is_set()))
        have = normalize_attrs(got[0]["attrs"]).get("large_community")
        want = normalize_attrs({"large_community": " ".join("(%d,%d,%d)" % c for c in large)})["large_community"]
        ctx.check(have == want, "the collector holds %s/24 from %s with %d large communities, want these %d"
                  % (prefix, ip, len((have or "").split()), len(large)))
        check_open_logs(ctx, agent, ip, device=True, backend=True)
        up, _ = wire(streams, ip, agent.listen_port)
        ctx.check(up.update_carrying(prefix + "/24") == (MAX_EXT, 1),
                  "on the wire the UPDATE from %s was %s, want (65535 bytes, 1 prefix)"
                  % (ip, up.update_carrying(prefix + "/24")))
        time.sleep(1.5)  # keepalives after it
        ctx.check(not speaker.closed.is_set() and collector.peer_info(ip)["state"] == "Established",
                  "the session of %s ended after its 65,535-byte UPDATE" % ip)
        ctx.step("device %s (capability 6 at both ends): an UPDATE of exactly 65,535 bytes on the wire; the "
                 "collector holds %s/24 with all %d large communities; the session stays up"
                 % (ip, prefix, len(large)))
    except BaseException:
        speaker.close()
        raise
    return speaker


def oversized(ctx, topo, agent, collector, ip, asn, device_ext, collector_ext):
    """A device whose session did not negotiate extended messages (on one
    side or the other) sends a 4,995-byte UPDATE: the agent must cut it
    before the collector sees a byte of it."""
    octet = int(ip.split(".")[-1])
    small_prefix, big_prefix = "10.210.%d.0" % octet, "10.211.%d.0" % octet
    small = badinput.bgp_update_v4(small_prefix, 24, asn, ip)
    big = badinput.bgp_update_v4(big_prefix, 24, asn, ip, [(asn, 9, i) for i in range(412)])
    ctx.check(len(big) > MAX_STD, "the oversized UPDATE is only %d bytes" % len(big))
    what = "device %s (capability 6 %s, the collector's %s)" % (
        ip, "sent" if device_ext else "not sent", "offered" if collector_ext else "not offered")
    speaker = UpdateSpeaker(ip, asn, agent.listen_port, device_ext, small).start()
    try:
        ctx.wait_until(lambda: speaker.established.is_set() and collector.peer_info(ip)["state"] == "Established",
                       30, "%s to reach Established at the collector" % what,
                       describe=lambda: "device established %s, collector %s" % (
                           speaker.established.is_set(), collector.peer_info(ip)))
        ctx.wait_until(lambda: small_prefix + "/24" in collector.peer_routes(ip), 20,
                       "the collector to hold %s/24 from %s" % (small_prefix, ip), poke=collector.poke)
        check_open_logs(ctx, agent, ip, device=device_ext, backend=collector_ext)
        since = agent.log.mark()
        before = badinput.counters(agent)
        t0 = time.monotonic()
        speaker.send(big)
        ctx.check(speaker.closed.wait(10), "%s: the agent kept the session open for 10 s after an UPDATE "
                  "of %d bytes" % (what, len(big)))
        secs = time.monotonic() - t0
        reason = "length_above_maximum"
        line, m = badinput.check_framing_error_reported(ctx, agent, ip, reason, since, before)
        # The collector saw the session end, never the message: a BIRD that
        # got it would have answered "Bad message length".
        ctx.wait_until(lambda: collector.peer_info(ip)["state"] != "Established", 10,
                       "the collector's session with %s to end" % ip)
        info = collector.peer_info(ip)
        ctx.check(big_prefix + "/24" not in collector.peer_routes(ip) and
                  "length" not in (info["last_error"] or "").lower(),
                  "the collector got the oversized UPDATE from %s (last error %r)" % (ip, info["last_error"]))
        ctx.step("%s: UPDATE of %d bytes -> connection closed after %.2f s, counted "
                 "(length_above_maximum %d -> %d), collector never saw it (its last error: %s); logged: %s"
                 % (what, len(big), secs, before["FramingErrorsByReason"][reason], m, info["last_error"],
                    line.strip()[:300]))
    finally:
        speaker.close()


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_extended_messages", __doc__))
