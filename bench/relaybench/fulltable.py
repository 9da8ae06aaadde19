"""The table the sender announces: n4 IPv4 /24s and n6 IPv6 /48s as BIRD
static routes in one routes file, written once per benchmark and included
by every sender.

A real full table is not one attribute set repeated: prefixes share
attributes in small groups (a few prefixes per UPDATE on average). Route i
belongs to attribute group i // group_size; each group has its own MED and
community, so BIRD packs about `group_size` prefixes into one UPDATE, and
the UPDATE count and bytes on the wire resemble a real table dump more
than a single-attribute table (which packs ~1000 /24s per UPDATE) would.

IPv4: 16.0.0.0/24 upwards (1,000,000 /24s end in 31.66.63.0/24).
IPv6: 2001:1000::/48 upwards (2001:1000:0::/48 .. 2001:1003:xxxx::/48).
Next hops are set by the sender's export (192.0.2.3, 2001:db8::3).
"""

import os

# 16.0.0.0/8 .. 115.255.255.0/24: stays clear of 127/8 and multicast.
MAX_V4 = 100 * 65536
MAX_V6 = 0xf000 * 65536


def ipv4_prefix(i):
    a = 16 + (i >> 16)
    return "%d.%d.%d.0/24" % (a, (i >> 8) & 255, i & 255)


def ipv6_prefix(j):
    return "2001:%x:%x::/48" % (0x1000 + (j >> 16), j & 0xffff)


def group_attrs(group, asn):
    return "bgp_med = %d; bgp_community.add((%d,%d));" % (group, asn, group & 0xffff)


def write_routes_file(path, n4, n6, group_size, asn):
    """Writes the static protocols s4 and s6 to `path` (atomically)."""
    if not 0 <= n4 <= MAX_V4:
        raise ValueError("IPv4 prefix count out of range: %d" % n4)
    if not 0 <= n6 <= MAX_V6:
        raise ValueError("IPv6 prefix count out of range: %d" % n6)
    if group_size < 1:
        raise ValueError("group size must be at least 1")
    tmp = path + ".new"
    with open(tmp, "w", buffering=1 << 20) as f:
        w = f.write
        w("protocol static s4 {\n  ipv4;\n")
        for i in range(n4):
            w("  route %s blackhole { %s };\n" % (ipv4_prefix(i), group_attrs(i // group_size, asn)))
        w("}\nprotocol static s6 {\n  ipv6;\n")
        for j in range(n6):
            w("  route %s blackhole { %s };\n" % (ipv6_prefix(j), group_attrs((n4 + j) // group_size, asn)))
        w("}\n")
    os.replace(tmp, path)
