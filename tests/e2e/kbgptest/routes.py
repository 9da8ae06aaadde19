"""The routes a simulated device announces.

Each route belongs to one of four attribute classes (index % 4) so that the
collector can check every attribute of every prefix against what the device
was told to send: communities, MED, large communities, ORIGIN, AS-path
prepend. The device class (bird.BirdDevice, frr.FrrDevice) turns a class into
its own configuration and says what the collector must then hold
(`expected_attrs`).
"""

import ipaddress

NUM_CLASSES = 4


class Route:
    __slots__ = ("index", "prefix", "family", "cls")

    def __init__(self, index, prefix, family):
        self.index = index
        self.prefix = prefix
        self.family = family  # 4 or 6
        self.cls = index % NUM_CLASSES

    def __repr__(self):
        return "Route(%s, class %d)" % (self.prefix, self.cls)


def ipv4_prefix(i):
    """The i-th IPv4 /24: 10.0.0.0/24, 10.0.1.0/24, ... (65,536 of them)."""
    if not 0 <= i < 65536:
        raise ValueError("IPv4 route index out of range: %d" % i)
    return "10.%d.%d.0/24" % (i >> 8, i & 255)


def ipv6_prefix(i):
    """The i-th IPv6 /48 in 2001:db8::/32, from 2001:db8:1000::/48 on (the
    next hops live in 2001:db8::/48, which stays unused)."""
    if not 0 <= i < 0xf000:
        raise ValueError("IPv6 route index out of range: %d" % i)
    return "2001:db8:%x::/48" % (0x1000 + i)


def make_routes(n4, n6):
    """n4 IPv4 /24s and n6 IPv6 /48s. Indices run on across both families
    so that both families see every class."""
    routes = [Route(i, ipv4_prefix(i), 4) for i in range(n4)]
    routes += [Route(n4 + j, ipv6_prefix(j), 6) for j in range(n6)]
    return routes


def split_by_family(routes):
    v4 = [r for r in routes if r.family == 4]
    v6 = [r for r in routes if r.family == 6]
    return v4, v6


def canonical_prefix(text):
    """A prefix in one spelling (BIRD prints IPv6 compressed; so do we)."""
    return str(ipaddress.ip_network(text, strict=False))
