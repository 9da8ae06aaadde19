"""BIRD as the sender (active side, the full table as static routes, the
BGP protocol starting disabled) and as the receiver (passive, imports
everything). Process handling comes from the e2e harness's Bird class;
polling goes through BirdCtl (no fork per query).

Both log with millisecond timestamps, so a log shows when the session came
up ("State changed to up") to compare with what the benchmark measured.
"""

from kbgptest.bird import Bird
from kbgptest.errors import TestFailure

from .birdctl import BirdCtl

SENDER_IP = "127.0.0.3"
SENDER_ASN = 65003
RECEIVER_IP = "127.0.0.2"
RECEIVER_ASN = 65001
SENDER_PROTO = "up"
RECEIVER_PROTO = "from_sender"


class Receiver(Bird):
    def __init__(self, ctx, port):
        super().__init__(ctx, "receiver")
        self.ip = RECEIVER_IP
        self.port = port
        self.ctl_client = None

    def write_config(self):
        conf = ("log stderr all;\n"
                "timeformat log iso long ms;\n"
                "router id %s;\n"
                "protocol device {}\n"
                "protocol bgp %s {\n"
                "  local %s port %d as %d;\n"
                "  neighbor %s as %d;\n"
                "  passive on;\n"
                "  multihop;\n"
                "  graceful restart off;\n"
                "  long lived graceful restart off;\n"
                "  debug { states };\n"
                "  ipv4 { import all; export none; };\n"
                "  ipv6 { import all; export none; };\n"
                "}\n" % (self.ip, RECEIVER_PROTO, self.ip, self.port, RECEIVER_ASN,
                         SENDER_IP, SENDER_ASN))
        with open(self.conf, "w") as f:
            f.write(conf)

    def control(self):
        if self.ctl_client is None:
            self.ctl_client = BirdCtl(self.ctl).connect()
        return self.ctl_client

    def info(self):
        return self.control().protocol(RECEIVER_PROTO)

    def stop(self):
        if self.ctl_client:
            self.ctl_client.close()
        super().stop()


class Sender(Bird):
    """Announces the routes file; its BGP protocol starts disabled and is
    enabled once every static route is loaded, so the measurement never
    includes BIRD reading its configuration."""

    def __init__(self, ctx, routes_file, peer_ip, peer_port):
        super().__init__(ctx, "sender")
        self.ip = SENDER_IP
        self.routes_file = routes_file
        self.peer_ip = peer_ip
        self.peer_port = peer_port
        self.local_port = ctx.free_port(self.ip)
        self.ctl_client = None

    def write_config(self):
        conf = ("log stderr all;\n"
                "timeformat log iso long ms;\n"
                "router id %s;\n"
                "protocol device {}\n"
                "include \"%s\";\n"
                "protocol bgp %s {\n"
                "  disabled;\n"
                "  local %s port %d as %d;\n"
                "  neighbor %s port %d as %d;\n"
                "  multihop;\n"
                "  connect delay time 1;\n"
                "  connect retry time 1;\n"
                "  error wait time 1, 5;\n"
                "  debug { states };\n"
                "  ipv4 { import none; export all; next hop address 192.0.2.3; };\n"
                "  ipv6 { import none; export all; next hop address 2001:db8::3; };\n"
                "}\n" % (self.ip, self.routes_file, SENDER_PROTO, self.ip, self.local_port,
                         SENDER_ASN, self.peer_ip, self.peer_port, RECEIVER_ASN))
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self, timeout=120):
        # Parsing a million static routes takes seconds, so no separate
        # `bird -p` check first: a bad config makes `bird -f` exit, which
        # _ready() reports.
        self.write_config()
        self.proc = self.ctx.spawn(self.name, ["bird", "-f", "-c", self.conf, "-s", self.ctl,
                                               "-P", self.pidfile])
        self.ctx.wait_until(self._ready, timeout, "the sender BIRD to answer on %s" % self.ctl)
        return self

    def control(self):
        if self.ctl_client is None:
            self.ctl_client = BirdCtl(self.ctl, timeout=120).connect()
        return self.ctl_client

    def loaded_routes(self):
        return self.control().static_routes(["s4", "s6"])

    def enable(self):
        out = self.control().command("enable %s" % SENDER_PROTO)
        if not any("enabled" in l for l in out):
            raise TestFailure("birdc enable %s: %s" % (SENDER_PROTO, " | ".join(out)))

    def stop(self):
        if self.ctl_client:
            self.ctl_client.close()
        super().stop()
