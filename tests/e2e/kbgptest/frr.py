"""FRR bgpd as a simulated device: standalone (no zebra: -S -Z), active
side, `coalesce-time 0` (else it waits ~1 s before sending), bulk networks
loaded with `vtysh -f`, attributes set per class by route-maps.
"""

import json
import os
import subprocess

from .bird import NEXT_HOP4, NEXT_HOP6, normalize_attrs
from .errors import TestFailure
from .routes import NUM_CLASSES, split_by_family

BGPD = "/usr/lib/frr/bgpd"


class FrrError(Exception):
    pass


class FrrDevice:
    kind = "frr"

    def __init__(self, ctx, ip, asn, routes, peer_ip, peer_port, peer_asn, name=None, password=None):
        self.ctx = ctx
        self.ip = ip
        self.asn = asn
        self.password = password  # TCP-MD5 key of the session, None for none
        self.routes_list = list(routes)
        self.peer_ip = peer_ip
        self.peer_port = peer_port
        self.peer_asn = peer_asn
        self.name = name or "frr_%s" % ip.replace(".", "_")
        self.dir = ctx.path(self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "bgpd.conf")
        self.local_port = ctx.free_port(ip)
        octet = int(ip.split(".")[-1])
        self.next_hop4 = NEXT_HOP4 % octet
        self.next_hop6 = NEXT_HOP6 % octet
        self.proc = None

    # -- the attribute classes (see routes.py) --
    def _route_map(self, cls):
        a = self.asn
        lines = ["route-map CLASS%d permit 10" % cls,
                 " set community %d:%d" % (a, 100 + cls)]
        if cls == 0:
            lines.append(" set metric 50")
        elif cls == 1:
            lines.append(" set large-community %d:%d:1" % (a, cls))
            lines.append(" set origin incomplete")
        elif cls == 2:
            lines.append(" set large-community %d:%d:2" % (a, cls))
            lines.append(" set as-path prepend %d" % a)
        else:
            lines.append(" set metric 300")
            lines.append(" set large-community %d:%d:3" % (a, cls))
        return lines

    def expected_attrs(self, r):
        """What a BIRD collector must show for route r. bgpd sends MED 0 for
        its own networks unless a route-map sets one."""
        a = self.asn
        attrs = {"origin": "IGP", "as_path": str(a), "local_pref": "100", "med": "0",
                 "next_hop": self.next_hop4 if r.family == 4 else self.next_hop6,
                 "community": "(%d,%d)" % (a, 100 + r.cls)}
        if r.cls == 0:
            attrs["med"] = "50"
        elif r.cls == 1:
            attrs["large_community"] = "(%d,%d,1)" % (a, r.cls)
            attrs["origin"] = "Incomplete"
        elif r.cls == 2:
            attrs["large_community"] = "(%d,%d,2)" % (a, r.cls)
            attrs["as_path"] = "%d %d" % (a, a)
        else:
            attrs["med"] = "300"
            attrs["large_community"] = "(%d,%d,3)" % (a, r.cls)
        return normalize_attrs(attrs)

    def write_config(self):
        p = self.peer_ip
        lines = ["log stdout critical", "hostname %s" % self.name, "!",
                 "route-map NEXTHOP4 permit 10", " set ip next-hop %s" % self.next_hop4,
                 "route-map NEXTHOP6 permit 10", " set ipv6 next-hop global %s" % self.next_hop6]
        for cls in range(NUM_CLASSES):
            lines += self._route_map(cls)
        lines += ["!",
                  "router bgp %d" % self.asn,
                  " bgp router-id %s" % self.ip,
                  " no bgp ebgp-requires-policy",
                  " no bgp network import-check",
                  " no bgp default ipv4-unicast",
                  " coalesce-time 0",
                  " neighbor %s remote-as %d" % (p, self.peer_asn),
                  " neighbor %s port %d" % (p, self.peer_port),
                  " neighbor %s update-source %s" % (p, self.ip),
                  " neighbor %s disable-connected-check" % p,
                  " neighbor %s timers connect 1" % p,
                  *([" neighbor %s password %s" % (p, self.password)] if self.password else []),
                  " address-family ipv4 unicast",
                  "  neighbor %s activate" % p,
                  "  neighbor %s route-map NEXTHOP4 out" % p,
                  " exit-address-family",
                  " address-family ipv6 unicast",
                  "  neighbor %s activate" % p,
                  "  neighbor %s route-map NEXTHOP6 out" % p,
                  " exit-address-family",
                  "!"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=20):
        self.write_config()
        self.proc = self.ctx.spawn(self.name, [
            BGPD, "-S", "-Z", "-l", self.ip, "-p", str(self.local_port), "-f", self.conf,
            "--vty_socket", self.dir, "-i", os.path.join(self.dir, "bgpd.pid"), "-P", "0"])
        self.ctx.wait_until(self._ready, timeout, "%s (FRR bgpd) to answer vtysh" % self.name)
        self._load(self.routes_list, withdraw=False)
        return self

    def _ready(self):
        if not self.proc.alive():
            raise TestFailure("%s (FRR bgpd) exited with status %s" % (self.name, self.proc.exited_with()))
        try:
            self.vtysh("show bgp summary json")
            return True
        except FrrError:
            return False

    def stop(self):
        if self.proc:
            self.proc.stop()

    def vtysh(self, *commands, timeout=120):
        argv = ["vtysh", "--vty_socket", self.dir, "-d", "bgpd"]
        for c in commands:
            argv += ["-c", c]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise FrrError("vtysh %r on %s timed out" % (commands, self.name))
        if r.returncode != 0:
            raise FrrError("vtysh %r on %s failed (%d): %s" % (commands, self.name, r.returncode,
                                                                (r.stderr + r.stdout).strip()[:500]))
        return r.stdout

    def _load(self, routes, withdraw):
        """Adds (or with withdraw=True removes) `routes` in one vtysh -f."""
        v4, v6 = split_by_family(routes)
        neg = "no " if withdraw else ""
        lines = ["router bgp %d" % self.asn]
        for family, rs in (("ipv4", v4), ("ipv6", v6)):
            if not rs:
                continue
            lines.append(" address-family %s unicast" % family)
            lines += ["  %snetwork %s route-map CLASS%d" % (neg, r.prefix, r.cls) for r in rs]
            lines.append(" exit-address-family")
        path = os.path.join(self.dir, "withdraw.conf" if withdraw else "announce.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        argv = ["vtysh", "--vty_socket", self.dir, "-d", "bgpd", "-f", path]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise TestFailure("vtysh -f %s on %s failed (%d): %s" % (
                path, self.name, r.returncode, (r.stderr + r.stdout).strip()[-1000:]))

    def set_routes(self, routes):
        """Announces exactly `routes` from now on (withdraws the rest)."""
        keep = {r.prefix for r in routes}
        gone = [r for r in self.routes_list if r.prefix not in keep]
        have = {r.prefix for r in self.routes_list}
        new = [r for r in routes if r.prefix not in have]
        if gone:
            self._load(gone, withdraw=True)
        if new:
            self._load(new, withdraw=False)
        self.routes_list = list(routes)

    def neighbor(self):
        out = self.vtysh("show bgp neighbors %s json" % self.peer_ip, timeout=30)
        try:
            return json.loads(out).get(self.peer_ip, {})
        except ValueError:
            raise FrrError("vtysh neighbor json on %s: %s" % (self.name, out[:300]))

    def session_state(self):
        return self.neighbor().get("bgpState")

    def established(self):
        return self.session_state() == "Established"

    def peer_router_id(self):
        """The BGP identifier in the OPEN the device received."""
        return self.neighbor().get("remoteRouterId")

    def poke(self):
        pass
