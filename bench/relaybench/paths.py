"""The four paths between a BGP speaker at SENDER_IP and its peer
listening at dest_ip:dest_port:

  direct   sender ─────────────────────────────────────────────▶ dest
  socat    sender ─▶ socat (127.0.0.1) ─────────────────────────▶ dest
  stunnel  sender ─▶ stunnel client ══TLS══▶ stunnel server ─────▶ dest
  kbgp     sender ─▶ kbgp (4 processes) ══gRPC/TLS══▶ kbgp-ingest ─▶ dest

Every relay connects to dest from SENDER_IP, so the receiver's neighbor is
the sender on every path. A path's relay processes are what the benchmark
meters (CPU, peak RSS): `processes()` names them.
"""

import shutil

from kbgptest.errors import TestFailure
from kbgptest.kbgp import Agent, Ingest
from kbgptest.tls import make_tls

from . import procstat
from .daemons import SENDER_IP

RELAY_IP = "127.0.0.1"
PATHS = ("direct", "socat", "stunnel", "kbgp")
KBGP_WORKERS = ("kbgp-listener", "kbgp-uplink", "kbgp-admin")
STUNNEL = "stunnel4"


def listening(ip, port):
    """True when some socket listens on ip:port (from /proc/net/tcp, so
    that checking never opens a connection through a relay)."""
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(ip.split("."))), port)
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == want and parts[3] == "0A":
                return True
    return False


class Path:
    name = None

    def __init__(self, ctx, dest_ip, dest_port):
        self.ctx = ctx
        self.dest_ip = dest_ip
        self.dest_port = dest_port
        self.entry = (dest_ip, dest_port)  # where the sender connects

    def start(self):
        return self

    def processes(self):
        """{label: pid} of the relay's processes."""
        return {}

    def check_alive(self):
        pass

    def _wait_listening(self, proc, ip, port, what):
        def up():
            if not proc.alive():
                raise TestFailure("%s exited with status %s (log %s)" % (
                    what, proc.exited_with(), proc.log_path))
            return listening(ip, port)
        self.ctx.wait_until(up, 20, "%s to listen on %s:%d" % (what, ip, port), interval=0.05)


class Direct(Path):
    name = "direct"


class Socat(Path):
    """A plain TCP relay with socat's defaults (8 KiB buffer), one
    connection, TCP_NODELAY both ways."""
    name = "socat"

    def start(self):
        port = self.ctx.free_port(RELAY_IP)
        self.proc = self.ctx.spawn("socat", [
            "socat", "TCP-LISTEN:%d,bind=%s,reuseaddr,nodelay" % (port, RELAY_IP),
            "TCP:%s:%d,bind=%s,nodelay" % (self.dest_ip, self.dest_port, SENDER_IP)])
        self._wait_listening(self.proc, RELAY_IP, port, "socat")
        self.entry = (RELAY_IP, port)
        return self

    def processes(self):
        return {"socat": self.proc.pid}


class Stunnel(Path):
    """Two stunnel4 processes, TLS between them with the same ECDSA P-256
    certificate kbgp-ingest uses; the client checks the chain and the host
    name, as kbgp does. Settings from bgp-test-peers.md: no syslog,
    TIMEOUTclose 0, TCP_NODELAY on every socket."""
    name = "stunnel"

    def start(self):
        tls = make_tls(self.ctx.path("tls"))
        tunnel_port = self.ctx.free_port(RELAY_IP)
        entry_port = self.ctx.free_port(RELAY_IP)
        common = ("foreground = yes\npid =\nsyslog = no\ndebug = warning\n")
        sockopts = ("socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\nTIMEOUTclose = 0\n")
        server_conf = self.ctx.path("stunnel-server.conf")
        with open(server_conf, "w") as f:
            f.write(common + "[bgp-server]\naccept = %s:%d\nconnect = %s:%d\nlocal = %s\n"
                    "cert = %s\nkey = %s\n" % (RELAY_IP, tunnel_port, self.dest_ip, self.dest_port,
                                               SENDER_IP, tls.server_cert, tls.server_key) + sockopts)
        client_conf = self.ctx.path("stunnel-client.conf")
        with open(client_conf, "w") as f:
            f.write(common + "[bgp-client]\nclient = yes\naccept = %s:%d\nconnect = %s:%d\n"
                    "CAfile = %s\nverifyChain = yes\ncheckHost = localhost\n"
                    % (RELAY_IP, entry_port, RELAY_IP, tunnel_port, tls.ca_cert) + sockopts)
        self.server = self.ctx.spawn("stunnel-server", [STUNNEL, server_conf])
        self._wait_listening(self.server, RELAY_IP, tunnel_port, "the stunnel server")
        self.client = self.ctx.spawn("stunnel-client", [STUNNEL, client_conf])
        self._wait_listening(self.client, RELAY_IP, entry_port, "the stunnel client")
        self.entry = (RELAY_IP, entry_port)
        return self

    def processes(self):
        return {"stunnel-client": self.client.pid, "stunnel-server": self.server.pid}


class Kbgp(Path):
    """kbgp-ingest (TLS, the sender registered with dest as its collector)
    and kbgp (supervisor as root, three workers as user kbgp)."""
    name = "kbgp"

    def __init__(self, ctx, dest_ip, dest_port, binaries, log_level="info"):
        super().__init__(ctx, dest_ip, dest_port)
        self.binaries = binaries
        self.log_level = log_level
        self.pids = {}

    def start(self):
        tls = make_tls(self.ctx.path("tls"))
        self.ingest = Ingest(self.ctx, self.binaries, self.ctx.free_port(RELAY_IP), tls, [SENDER_IP],
                             "%s:%d" % (self.dest_ip, self.dest_port), log_level=self.log_level)
        self.ingest.start()
        self.agent = Agent(self.ctx, self.binaries, self.ctx.free_port(RELAY_IP), self.ingest.port, tls,
                           self.ctx.free_port(RELAY_IP), log_level=self.log_level)
        self.agent.start()
        sup = self.agent.pid
        self.pids = {"kbgp": sup}
        for pid in procstat.children(sup):
            name = procstat.comm(pid)
            if name in KBGP_WORKERS:
                self.pids[name] = pid
        missing = [w for w in KBGP_WORKERS if w not in self.pids]
        if missing:
            raise TestFailure("kbgp's workers %s are not running" % ", ".join(missing))
        self.pids["kbgp-ingest"] = self.ingest.proc.pid
        self.entry = (RELAY_IP, self.agent.listen_port)
        return self

    def processes(self):
        return dict(self.pids)

    def check_alive(self):
        for label, pid in self.pids.items():
            if procstat.cpu_seconds(pid) is None:
                raise TestFailure("%s (pid %d) is gone" % (label, pid))


def make_path(name, ctx, dest_ip, dest_port, binaries=None, log_level="info"):
    if name == "direct":
        return Direct(ctx, dest_ip, dest_port)
    if name == "socat":
        return Socat(ctx, dest_ip, dest_port)
    if name == "stunnel":
        return Stunnel(ctx, dest_ip, dest_port)
    if name == "kbgp":
        return Kbgp(ctx, dest_ip, dest_port, binaries, log_level)
    raise ValueError(name)


def missing_tools(paths):
    need = {"socat": ["socat"], "stunnel": [STUNNEL, "openssl"], "kbgp": ["openssl"]}
    out = []
    for p in paths:
        out += [t for t in need.get(p, []) if not shutil.which(t)]
    return sorted(set(out))
