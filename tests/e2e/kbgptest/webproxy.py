"""Real HTTP CONNECT proxies with Basic authentication on loopback, each with
its own config in the test's directory, started in the foreground and
stopped by PID like every other process of a test:

- tinyproxy (Debian's tinyproxy): its config only takes [-a-z0-9._] in a
  BasicAuth password, so it proves the proxy path with a plain password;
- squid (Debian's squid, optional): any password (htpasswd file), so it
  proves a password with '@', '%', ':' and more, percent-encoded in the URL.
"""

import os
import pwd
import shutil
import subprocess
import urllib.parse

from .errors import SkipTest, TestFailure
from .net import tcp_listening


def proxy_url(user, password, port, host="127.0.0.1"):
    """http://user:password@host:port with user and password
    percent-encoded (every reserved character)."""
    return "http://%s:%s@%s:%d" % (urllib.parse.quote(user, safe=""),
                                   urllib.parse.quote(password, safe=""), host, port)


class TinyProxy:
    binary = "tinyproxy"

    def __init__(self, ctx, port, user, password, name="tinyproxy"):
        if not shutil.which(self.binary):
            raise TestFailure("tinyproxy is not installed (apt-get install tinyproxy)")
        self.ctx = ctx
        self.port = port
        self.user = user
        self.password = password
        self.name = name
        self.conf = ctx.path(name + ".conf")
        self.log_path = ctx.log_path(name)
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "Port %d" % port,
                "Listen 127.0.0.1",
                "Timeout 600",
                "LogLevel Info",
                "MaxClients 64",
                "Allow 127.0.0.1",
                "BasicAuth %s %s" % (user, password),
                "DisableViaHeader Yes",
                ""]))
        self.proc = None

    def start(self, timeout=10):
        self.proc = self.ctx.spawn(self.name, [self.binary, "-d", "-c", self.conf])
        self.ctx.wait_until(lambda: self._up(), timeout, "tinyproxy to listen on 127.0.0.1:%d" % self.port)
        return self

    def _up(self):
        if not self.proc.alive():
            raise TestFailure("tinyproxy exited with status %s" % self.proc.exited_with())
        return tcp_listening("127.0.0.1", self.port)

    def url(self, password=None):
        return proxy_url(self.user, self.password if password is None else password, self.port)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def connects(self, target):
        """Lines of tinyproxy's log about a CONNECT to `target`."""
        return [l for l in self.log_text().splitlines() if "CONNECT" in l and target in l]

    def stop(self):
        return self.proc.stop() if self.proc else None


class Squid:
    binary = "/usr/sbin/squid"
    helper = "/usr/lib/squid/basic_ncsa_auth"

    def __init__(self, ctx, port, user, password, name="squid"):
        if not (os.access(self.binary, os.X_OK) and os.access(self.helper, os.X_OK)):
            raise SkipTest("squid is not installed (apt-get install squid); the test of a "
                           "password with reserved characters needs it")
        self.ctx = ctx
        self.port = port
        self.user = user
        self.password = password
        self.name = name
        d = ctx.path(name)
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.access_log = os.path.join(d, "access.log")
        self.cache_log = os.path.join(d, "cache.log")
        passwd = os.path.join(d, "passwd")
        hashed = subprocess.run(["openssl", "passwd", "-apr1", "-stdin"], input=password,
                                capture_output=True, text=True, check=True).stdout.strip()
        with open(passwd, "w") as f:
            f.write("%s:%s\n" % (user, hashed))
        # squid drops to its own user (proxy): it must read and write here.
        uid = pwd.getpwnam("proxy").pw_uid
        for p in (d, self.access_log, self.cache_log, passwd):
            if not os.path.exists(p):
                open(p, "w").close()
            os.chown(p, uid, -1)
        self.conf = os.path.join(d, "squid.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "http_port 127.0.0.1:%d" % port,
                "pid_filename %s" % os.path.join(d, "squid.pid"),
                "cache_log %s" % self.cache_log,
                "access_log stdio:%s" % self.access_log,
                "cache deny all",
                "cache_mem 8 MB",
                "coredump_dir %s" % d,
                "netdb_filename none",
                "pinger_enable off",
                "shutdown_lifetime 1 seconds",
                "auth_param basic program %s %s" % (self.helper, passwd),
                "auth_param basic realm kbgp-test",
                "acl authed proxy_auth REQUIRED",
                "http_access allow authed",
                "http_access deny all",
                ""]))
        self.proc = None

    def start(self, timeout=20):
        self.proc = self.ctx.spawn(self.name, [self.binary, "-N", "-f", self.conf])

        def up():
            if not self.proc.alive():
                raise TestFailure("squid exited with status %s" % self.proc.exited_with())
            return tcp_listening("127.0.0.1", self.port)
        self.ctx.wait_until(up, timeout, "squid to listen on 127.0.0.1:%d" % self.port)
        return self

    def url(self, password=None):
        return proxy_url(self.user, self.password if password is None else password, self.port)

    def tunnels(self, target):
        """access.log lines of CONNECTs to `target` that squid let through
        (TCP_TUNNEL)."""
        with open(self.access_log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return [l for l in text.splitlines() if "CONNECT" in l and target in l and "TCP_TUNNEL" in l]

    def stop(self):
        return self.proc.stop() if self.proc else None
