"""BIRD 2 as a simulated device (active side, static routes) and as the
collector (passive side, `import all`), plus birdc queries.

Pitfall (see bgp-test-peers.md): BIRD 2.0.12 sometimes holds back the last
UPDATE batch for up to ~3 s when its main loop goes idle; any control-socket
command wakes it, so waits poke both daemons with `show status`.
"""

import os
import re
import subprocess

from . import net
from .errors import TestFailure
from .routes import canonical_prefix, split_by_family

NEXT_HOP4 = "192.0.2.%d"
NEXT_HOP6 = "2001:db8::%d"


def parse_protocol_info(lines):
    """{"state": BGP state, "routes": {"ipv4": n, "ipv6": n} (imported),
    "neighbor_id": text, "last_error": text} from the lines of BIRD's
    `show protocols all NAME` (through birdc or its control socket)."""
    info = {"state": None, "routes": {}, "last_error": None, "neighbor_id": None}
    channel = None
    for line in lines:
        s = line.strip()
        if s.startswith("BGP state:"):
            info["state"] = s.split(":", 1)[1].strip()
        elif s.startswith("Channel "):
            channel = s.split()[1]
        elif s.startswith("Routes:") and channel:
            m = re.match(r"Routes:\s+(\d+) imported", s)
            if m:
                info["routes"][channel] = int(m.group(1))
        elif s.startswith("Neighbor ID:"):
            info["neighbor_id"] = s.split(":", 1)[1].strip()
        elif s.startswith("Last error:"):
            info["last_error"] = s.split(":", 1)[1].strip()
    return info


class BirdError(Exception):
    """A birdc command failed (may be transient: the daemon is starting)."""


def protocol_name(ip):
    """The collector's protocol name for the peer at `ip`."""
    return "dev_" + ip.replace(".", "_").replace(":", "_")


class Bird:
    """One BIRD daemon in ctx's temp dir, named `name` (files name.conf,
    name.ctl, name.pid, name.log)."""

    def __init__(self, ctx, name):
        self.ctx = ctx
        self.name = name
        self.conf = ctx.path(name + ".conf")
        self.ctl = ctx.path(name + ".ctl")
        self.pidfile = ctx.path(name + ".pid")
        self.proc = None

    def write_config(self):
        raise NotImplementedError

    def start(self, timeout=15):
        self.write_config()
        r = subprocess.run(["bird", "-p", "-c", self.conf], capture_output=True, text=True)
        if r.returncode != 0:
            raise TestFailure("BIRD config %s does not parse: %s" % (self.conf, (r.stderr or r.stdout).strip()))
        self.proc = self.ctx.spawn(self.name, ["bird", "-f", "-c", self.conf, "-s", self.ctl, "-P", self.pidfile])
        self.ctx.wait_until(lambda: self._ready(), timeout, "%s (BIRD) to answer on %s" % (self.name, self.ctl))
        return self

    def _ready(self):
        if not self.proc.alive():
            raise TestFailure("%s (BIRD) exited with status %s" % (self.name, self.proc.exited_with()))
        try:
            self.birdc("show status")
            return True
        except BirdError:
            return False

    def stop(self):
        if self.proc:
            self.proc.stop()

    def birdc(self, command, timeout=60):
        """Runs one birdc command; returns its output lines without the
        banner. Raises BirdError on failure."""
        try:
            r = subprocess.run(["birdc", "-s", self.ctl, *command.split()],
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BirdError("birdc %r on %s timed out" % (command, self.name))
        lines = r.stdout.splitlines()
        if r.returncode != 0 or not lines or not lines[0].startswith("BIRD "):
            raise BirdError("birdc %r on %s failed (%d): %s" % (command, self.name, r.returncode,
                                                                 (r.stderr + r.stdout).strip()[:500]))
        body = lines[1:]
        if body and (body[0].startswith("syntax error") or body[0].startswith("Unknown")):
            raise BirdError("birdc %r on %s: %s" % (command, self.name, body[0]))
        return body

    def poke(self):
        """Wakes BIRD's main loop (see the module note)."""
        self.birdc("show status", timeout=10)

    def protocol_info(self, proto):
        """parse_protocol_info of `show protocols all PROTO`."""
        return parse_protocol_info(self.birdc("show protocols all %s" % proto))

    def state(self, proto):
        return self.protocol_info(proto)["state"]

    def protocol_states(self):
        """{protocol name: BGP state} of every BGP protocol, from one
        `show protocols` (cheap with a thousand protocols, unlike
        protocol_info per protocol). The state is BIRD's Info column:
        "Established", "Active", "Connect", "Idle", ... ("Down" when the
        protocol is disabled)."""
        out = {}
        for line in self.birdc("show protocols"):
            parts = line.split()
            if len(parts) < 5 or parts[1] != "BGP":
                continue
            # Name Proto Table State Since [Info...]; Since is a time, or a
            # date and a time: words that start with a digit.
            rest = parts[4:]
            while rest and rest[0][:1].isdigit():
                rest = rest[1:]
            out[parts[0]] = "Down" if parts[3] == "down" else (rest[0] if rest else parts[3])
        return out

    def routes(self, proto=None):
        """Every route in master4 and master6 (of protocol `proto` if
        given) as {prefix: {"proto", "from", "attrs": {name: value},
        "alternatives": n}}; attribute names are the BGP.* names without
        the prefix, values as BIRD prints them."""
        cmd = "show route all"
        if proto:
            cmd += " protocol %s" % proto
        out = {}
        for table in ("master4", "master6"):
            out.update(parse_show_route_all(self.birdc("%s table %s" % (cmd, table))))
        return out


_HEADER = re.compile(r"^(\S+)\s+.*?\[(\S+) [^\]]*?(?:from (\S+))?\]")


def parse_show_route_all(lines):
    routes = {}
    current = None
    last_attr = None
    for line in lines:
        if not line or line.startswith("Table "):
            continue
        if line.startswith("\t\t"):
            # BIRD wraps a long community list onto lines of their own,
            # each starting with two tabs (ea_show_int_set): the rest of
            # the attribute above.
            if current is not None and last_attr is not None:
                current["attrs"][last_attr] += " " + line.strip()
            continue
        if line.startswith("\t"):
            s = line.strip()
            last_attr = None
            if current is not None and s.startswith("BGP."):
                name, _, value = s[4:].partition(":")
                last_attr = name.strip()
                current["attrs"][last_attr] = value.strip()
            continue
        last_attr = None
        if line.startswith(" "):
            # Another route for the same prefix (printed under the first).
            if current is not None:
                current["alternatives"] += 1
            continue
        m = _HEADER.match(line)
        if not m:
            continue
        prefix = canonical_prefix(m.group(1))
        current = {"proto": m.group(2), "from": m.group(3), "attrs": {}, "alternatives": 0}
        if prefix in routes:
            routes[prefix]["alternatives"] += 1
        else:
            routes[prefix] = current
    return routes


def _communities(value):
    """'(65003,0) (65003,1)' -> sorted tuple of '(65003,0)', without spaces."""
    return tuple(sorted(re.sub(r"\s+", "", t) for t in re.findall(r"\([^)]*\)", value)))


def normalize_attrs(attrs):
    """Attribute values in one spelling: community lists sorted, spaces in
    tuples dropped (BIRD sorts communities itself; this only makes the
    comparison independent of that)."""
    out = {}
    for k, v in attrs.items():
        if k in ("community", "large_community", "ext_community"):
            out[k] = " ".join(_communities(v))
        else:
            out[k] = " ".join(v.split())
    return out


class BirdCollector(Bird):
    """The backend's BGP daemon: passive, one protocol per expected device,
    imports everything, exports nothing."""

    def __init__(self, ctx, ip, port, asn, peers, name="collector"):
        super().__init__(ctx, name)
        self.ip = ip
        self.port = port
        self.asn = asn
        # [(ip, asn)] or [(ip, asn, extra)], extra: more BIRD statements
        # for that neighbor (e.g. "startup hold time 6;").
        self.peers = list(peers)

    def write_config(self):
        parts = ["log stderr all;",
                 "router id %s;" % self.ip,
                 "protocol device {}"]
        for peer in self.peers:
            ip, asn = peer[0], peer[1]
            extra = peer[2] if len(peer) > 2 else ""
            parts.append(
                "protocol bgp %s {\n"
                "  local %s port %d as %d;\n"
                # Listen on our own address only: a listener on 0.0.0.0:port
                # (BIRD's default) makes any other test's bind to that port
                # fail, e.g. a scale fleet's, when tests run in parallel.
                "  strict bind on;\n"
                "  neighbor %s as %d;\n"
                "  passive on;\n"
                "  multihop;\n"
                # A device that just closes its socket (FRR on SIGTERM) must
                # take its routes along, not leave them stale for minutes.
                "  graceful restart off;\n"
                "  long lived graceful restart off;\n"
                "  debug { states, events };\n"
                "  ipv4 { import all; export none; };\n"
                "  ipv6 { import all; export none; };\n"
                "%s"
                "}" % (protocol_name(ip), self.ip, self.port, self.asn, ip, asn,
                       "  %s\n" % extra if extra else ""))
        with open(self.conf, "w") as f:
            f.write("\n".join(parts) + "\n")

    def peer_info(self, device_ip):
        return self.protocol_info(protocol_name(device_ip))

    def peer_routes(self, device_ip):
        return self.routes(protocol_name(device_ip))


class BirdDevice(Bird):
    """A router announcing static routes over one BGP session (active side).
    Routes live in an included file; set_routes() rewrites it and runs
    `birdc configure`, which announces and withdraws the difference."""

    kind = "bird"

    def __init__(self, ctx, ip, asn, routes, peer_ip, peer_port, peer_asn, name=None, password=None):
        super().__init__(ctx, name or "device_%s" % ip.replace(".", "_"))
        self.ip = ip
        self.asn = asn
        self.password = password  # TCP-MD5 key of the session, None for none
        self.routes_list = list(routes)
        self.peer_ip = peer_ip
        self.peer_port = peer_port
        self.peer_asn = peer_asn
        self.local_port = ctx.free_port(ip)
        self.routes_file = ctx.path(self.name + "_routes.conf")
        octet = int(ip.split(".")[-1])
        self.next_hop4 = NEXT_HOP4 % octet
        self.next_hop6 = NEXT_HOP6 % octet
        self.proto = "up"

    # -- the attribute classes (see routes.py) --
    def _route_line(self, r):
        a = self.asn
        c = r.index % 65000 + 1
        stmts = ["bgp_community.add((%d,%d));" % (a, c)]
        if r.cls == 0:
            stmts.append("bgp_med = %d;" % r.index)
        elif r.cls == 1:
            stmts.append("bgp_large_community.add((%d,%d,1));" % (a, r.index))
            stmts.append("bgp_origin = ORIGIN_INCOMPLETE;")
        elif r.cls == 2:
            # (asn,0) asks the export filter for an AS-path prepend.
            stmts.append("bgp_community.add((%d,0));" % a)
            stmts.append("bgp_large_community.add((%d,%d,2));" % (a, r.index))
        else:
            stmts.append("bgp_med = %d;" % r.index)
            stmts.append("bgp_large_community.add((%d,%d,3));" % (a, r.index))
        return "  route %s blackhole { %s };" % (r.prefix, " ".join(stmts))

    def expected_attrs(self, r):
        """What a BIRD collector must show for route r (eBGP, one hop)."""
        a = self.asn
        c = r.index % 65000 + 1
        attrs = {"origin": "IGP", "as_path": str(a), "local_pref": "100",
                 "next_hop": self.next_hop4 if r.family == 4 else self.next_hop6}
        comms = ["(%d,%d)" % (a, c)]
        if r.cls == 0:
            attrs["med"] = str(r.index)
        elif r.cls == 1:
            attrs["large_community"] = "(%d,%d,1)" % (a, r.index)
            attrs["origin"] = "Incomplete"
        elif r.cls == 2:
            comms.append("(%d,0)" % a)
            attrs["large_community"] = "(%d,%d,2)" % (a, r.index)
            attrs["as_path"] = "%d %d" % (a, a)
        else:
            attrs["med"] = str(r.index)
            attrs["large_community"] = "(%d,%d,3)" % (a, r.index)
        attrs["community"] = " ".join(comms)
        return normalize_attrs(attrs)

    def write_routes(self):
        v4, v6 = split_by_family(self.routes_list)
        lines = ["protocol static s4 {", "  ipv4;"]
        lines += [self._route_line(r) for r in v4]
        lines += ["}", "protocol static s6 {", "  ipv6;"]
        lines += [self._route_line(r) for r in v6]
        lines += ["}"]
        tmp = self.routes_file + ".new"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.routes_file)

    def write_config(self):
        self.write_routes()
        # BIRD sends a MED over eBGP only if the export filter set it, so the
        # filter sets it again (to the value the static route carries).
        export = ("export filter { if (%d,0) ~ bgp_community then bgp_path.prepend(%d); "
                  "if defined(bgp_med) then bgp_med = bgp_med; accept; };" % (self.asn, self.asn))
        conf = ("log stderr all;\n"
                "router id %s;\n"
                "protocol device {}\n"
                "include \"%s\";\n"
                "protocol bgp %s {\n"
                "  local %s port %d as %d;\n"
                "  strict bind on;\n"  # as the collector's: no listener on 0.0.0.0
                "  neighbor %s port %d as %d;\n"
                "  multihop;\n"
                "  connect delay time 1;\n"
                "  connect retry time 1;\n"
                "  error wait time 1, 5;\n"
                "  debug { states, events };\n"
                "%s"
                "  ipv4 { import none; %s next hop address %s; };\n"
                "  ipv6 { import none; %s next hop address %s; };\n"
                "}\n" % (self.ip, self.routes_file, self.proto, self.ip, self.local_port, self.asn,
                         self.peer_ip, self.peer_port, self.peer_asn,
                         '  password "%s";\n' % self.password if self.password else "",
                         export, self.next_hop4, export, self.next_hop6))
        with open(self.conf, "w") as f:
            f.write(conf)

    def set_password(self, password):
        """A new TCP-MD5 key (None: none) via `birdc configure`: BIRD
        restarts the session with it."""
        self.password = password
        self.write_config()
        out = self.birdc("configure", timeout=60)
        if not any("Reconfigured" in l or "Reconfiguration in progress" in l for l in out):
            raise TestFailure("birdc configure on %s: %s" % (self.name, " | ".join(out)))

    def set_routes(self, routes):
        """Announces exactly `routes` from now on (withdraws the rest)."""
        self.routes_list = list(routes)
        self.write_routes()
        out = self.birdc("configure", timeout=120)
        if not any("Reconfigured" in l or "Reconfiguration in progress" in l for l in out):
            raise TestFailure("birdc configure on %s: %s" % (self.name, " | ".join(out)))

    def session_state(self):
        return self.state(self.proto)

    def established(self):
        return self.session_state() == "Established"

    def peer_router_id(self):
        """The BGP identifier in the OPEN the device received."""
        return self.protocol_info(self.proto)["neighbor_id"]


def scale_addresses(count, block=10):
    """`count` distinct device addresses 127.<block>.x.y (y = 1..250), for
    tests with many devices: [127.10.0.1, ..., 127.10.0.250, 127.10.1.1, ...]."""
    return ["127.%d.%d.%d" % (block, i // 250, i % 250 + 1) for i in range(count)]


def scale_asn(index):
    """A 4-byte private ASN per device index (RFC 6996)."""
    return 4200000000 + index


class BirdMultiDevice(Bird):
    """Many routers in one BIRD process: one BGP session (protocol) per
    entry of `sessions` [(source ip, asn)], each from its own 127.x.y.z
    address with its own ASN and router id, all announcing the same
    `prefixes` (IPv4 strings, blackhole statics).

    BIRD runs at most one session per neighbor (address, port) at a time
    (it locks the neighbor), so session i peers with `peers[i]`, one of the
    agent's listening endpoints [(ip, port)]: a process holds at most
    len(peers) sessions (DeviceFleet spreads more over several processes).

    The first `enabled` sessions (default all) start enabled; enable() and
    disable() change that one by one. Each protocol also listens on its own
    source address at one shared port (`strict bind`)."""

    kind = "bird-multi"

    def __init__(self, ctx, name, sessions, prefixes, peers, peer_asn, enabled=None, passwords=None):
        super().__init__(ctx, name)
        self.sessions = list(sessions)
        # TCP-MD5 key of each session (None or a missing entry: none)
        self.passwords = list(passwords or [])
        if len(self.sessions) > len(peers):
            raise TestFailure("%s: %d sessions but only %d agent endpoints: BIRD runs one session per "
                              "neighbor address and port" % (name, len(self.sessions), len(peers)))
        self.prefixes = list(prefixes)
        self.peers = list(peers)
        self.peer_asn = peer_asn
        self.enabled = set(range(len(self.sessions) if enabled is None else enabled))
        ips = [ip for ip, _ in self.sessions]
        self.local_port = net.free_port(ips[0], also_free_on=ips[1:])

    @staticmethod
    def proto(index):
        return "d%d" % index

    def write_config(self):
        parts = ["log stderr all;",
                 "router id %s;" % self.sessions[0][0],
                 "protocol device {}",
                 "protocol static routes4 {\n  ipv4;\n%s\n}" % "\n".join(
                     "  route %s blackhole;" % p for p in self.prefixes),
                 "template bgp device_session {\n"
                 # Listen on the session's own address, not on 0.0.0.0:port,
                 # where any other process's socket on that port collides.
                 "  strict bind on;\n"
                 "  multihop;\n"
                 "  connect delay time 1;\n"
                 "  connect retry time 1;\n"
                 "  error wait time 1, 5;\n"
                 "  ipv4 { import none; export all; next hop address 192.0.2.1; };\n"
                 "}"]
        for i, (ip, asn) in enumerate(self.sessions):
            peer_ip, peer_port = self.peers[i]
            password = self.passwords[i] if i < len(self.passwords) else None
            parts.append("protocol bgp %s from device_session { local %s port %d as %d; "
                         "neighbor %s port %d as %d; router id %s;%s%s }" % (
                             self.proto(i), ip, self.local_port, asn, peer_ip, peer_port, self.peer_asn,
                             ip, ' password "%s";' % password if password else "",
                             "" if i in self.enabled else " disabled;"))
        with open(self.conf, "w") as f:
            f.write("\n".join(parts) + "\n")

    def _switch(self, command, indexes):
        for i in indexes:
            out = self.birdc("%s %s" % (command, self.proto(i)))
            if not any(("enabled" in l or "disabled" in l) for l in out):
                raise TestFailure("birdc %s %s on %s: %s" % (command, self.proto(i), self.name,
                                                             " | ".join(out)))
            (self.enabled.add if command == "enable" else self.enabled.discard)(i)

    def enable(self, indexes):
        self._switch("enable", indexes)

    def disable(self, indexes):
        self._switch("disable", indexes)

    def enable_all(self):
        """Every session at once (one birdc command)."""
        out = self.birdc('enable "d*"')
        if not any("enabled" in l for l in out):
            raise TestFailure("birdc enable on %s: %s" % (self.name, " | ".join(out)))
        self.enabled = set(range(len(self.sessions)))

    def states(self):
        """{source ip: BGP state} of every session."""
        by_proto = self.protocol_states()
        return {ip: by_proto.get(self.proto(i)) for i, (ip, _) in enumerate(self.sessions)}


class DeviceFleet:
    """`sessions` [(source ip, asn)] spread over as many BirdMultiDevice
    processes as the agent's endpoints `peers` require (len(peers) sessions
    each), named name0, name1, ... Sessions are addressed by their index in
    `sessions` throughout."""

    def __init__(self, ctx, name, sessions, prefixes, peers, peer_asn, enabled=None, passwords=None):
        self.sessions = list(sessions)
        passwords = list(passwords or [])
        per = len(peers)
        enabled = len(self.sessions) if enabled is None else enabled
        self.birds = []
        for k, first in enumerate(range(0, len(self.sessions), per)):
            chunk = self.sessions[first:first + per]
            on = max(0, min(len(chunk), enabled - first))
            self.birds.append(BirdMultiDevice(ctx, "%s%d" % (name, k), chunk, prefixes, peers, peer_asn,
                                              enabled=on, passwords=passwords[first:first + per]))
        self.per = per

    def start(self):
        for b in self.birds:
            b.start()
        return self

    def stop(self):
        for b in self.birds:
            b.stop()

    def _split(self, indexes):
        by_bird = {}
        for i in indexes:
            by_bird.setdefault(i // self.per, []).append(i % self.per)
        return by_bird

    def enable(self, indexes):
        for k, local in self._split(indexes).items():
            self.birds[k].enable(local)

    def disable(self, indexes):
        for k, local in self._split(indexes).items():
            self.birds[k].disable(local)

    def enable_all(self):
        for b in self.birds:
            b.enable_all()

    def states(self):
        out = {}
        for b in self.birds:
            out.update(b.states())
        return out

    def established_count(self):
        return sum(1 for s in self.states().values() if s == "Established")

    def poke(self):
        for b in self.birds:
            b.poke()
