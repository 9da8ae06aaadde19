"""The project's binaries: kbgp (the agent) and kbgp-ingest (the reference
backend), their config files, and their JSON-lines logs."""

import json
import os
import re

from .errors import TestFailure
from .net import http_get, http_get_json, tcp_listening
from .procs import pid_alive, process_tree

EMAIL = "demo@example.com"
TOKEN = "s3cret"
WORKERS = ("kbgp-listener", "kbgp-uplink", "kbgp-admin")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def repo_root():
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class Binaries:
    def __init__(self, builddir):
        self.builddir = builddir
        self.kbgp = os.path.join(builddir, "kbgp")
        self.ingest = os.path.join(builddir, "kbgp-ingest")


def _complete(d):
    names = ("kbgp", "kbgp-ingest") + WORKERS
    return all(os.access(os.path.join(d, n), os.X_OK) for n in names)


def find_binaries(builddir=None):
    """The build dir holding kbgp, kbgp-ingest and the three workers:
    `builddir`, else $KBGP_BUILDDIR, else the repo's build/ or top dir.
    Returns (Binaries or None, list of dirs looked in)."""
    if builddir:
        candidates = [builddir]
    elif os.environ.get("KBGP_BUILDDIR"):
        candidates = [os.environ["KBGP_BUILDDIR"]]
    else:
        candidates = [os.path.join(repo_root(), "build"), repo_root()]
    for d in candidates:
        if _complete(d):
            return Binaries(os.path.abspath(d)), candidates
    return None, candidates


class LogFile:
    """A process's log: JSON lines (kbgp, kbgp-ingest) mixed with anything
    else. mark() + since= restrict a search to what came after."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def text(self, since=0):
        try:
            with open(self.path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def records(self, since=0):
        """(line, parsed JSON object or None) for every line."""
        out = []
        for line in self.text(since).splitlines():
            obj = None
            s = line.strip()
            if s.startswith("{"):
                try:
                    obj = json.loads(s)
                except ValueError:
                    obj = None
            out.append((line, obj if isinstance(obj, dict) else None))
        return out

    def find(self, text, since=0, **fields):
        """Lines containing `text` whose JSON fields (if any are given)
        have the given values (compared as strings)."""
        hits = []
        for line, obj in self.records(since):
            if text not in line:
                continue
            if fields:
                if obj is None or any(str(_field(obj, k)) != str(v) for k, v in fields.items()):
                    continue
            hits.append(line)
        return hits


def _field(obj, key):
    if key in obj:
        return obj[key]
    for v in obj.values():  # fields may be nested one level
        if isinstance(v, dict) and key in v:
            return v[key]
    return None


class Ingest:
    """kbgp-ingest with TLS (or plaintext), a credentials file and a device
    registry."""

    def __init__(self, ctx, binaries, port, tls, devices, collector, email=EMAIL, token=TOKEN,
                 plaintext=False, log_level="info", name="kbgp-ingest"):
        self.ctx = ctx
        self.binaries = binaries
        self.name = name
        self.port = port
        self.tls = tls
        self.plaintext = plaintext
        self.log_level = log_level
        self.creds_path = ctx.path("creds.json")
        self.registry_path = ctx.path("registry.json")
        with open(self.creds_path, "w") as f:
            json.dump({"credentials": [{"email": email, "token": token}]}, f, indent=2)
        os.chmod(self.creds_path, 0o600)
        self.write_registry(devices, collector)
        self.proc = None
        self.log = LogFile(ctx.log_path(name))

    def write_registry(self, devices, collector):
        """devices: device IPs; collector: "ip:port" of the collector."""
        entries = []
        for ip in devices:
            octet = int(ip.split(".")[-1])
            entries.append({"device_ip": ip, "site_id": 0, "company_id": 1001, "device_id": octet,
                            "device_name": "router%d" % octet, "md5_key": "",
                            "collector": collector, "source_ip": ip})
        with open(self.registry_path, "w") as f:
            json.dump({"devices": entries}, f, indent=2)

    def start(self, timeout=20):
        argv = [self.binaries.ingest, "--listen", "127.0.0.1:%d" % self.port,
                "--credentials", self.creds_path, "--registry", self.registry_path,
                "--log-level", self.log_level]
        if self.plaintext:
            argv.append("--plaintext")
        else:
            argv += ["--tls-cert", self.tls.server_cert, "--tls-key", self.tls.server_key]
        self.proc = self.ctx.spawn(self.name, argv)

        def up():
            if not self.proc.alive():
                raise TestFailure("kbgp-ingest exited with status %s" % self.proc.exited_with())
            return tcp_listening("127.0.0.1", self.port)
        self.ctx.wait_until(up, timeout, "kbgp-ingest to listen on 127.0.0.1:%d" % self.port)
        return self

    def stop(self):
        if self.proc:
            return self.proc.stop()


class Agent:
    """kbgp, started as root; it starts its three workers itself."""

    def __init__(self, ctx, binaries, listen_port, target_port, tls, metrics_port,
                 email=EMAIL, token=TOKEN, user="kbgp", log_level="info", name="kbgp",
                 extra_args=()):
        self.ctx = ctx
        self.binaries = binaries
        self.name = name
        self.listen_port = listen_port
        self.target_port = target_port
        self.tls = tls
        self.metrics_port = metrics_port
        self.email = email
        self.token = token
        self.user = user
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.proc = None
        self.log = LogFile(ctx.log_path(name))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.metrics_port, path)

    def start(self, timeout=20):
        argv = [self.binaries.kbgp, "--listen", "127.0.0.1:%d" % self.listen_port,
                "--target", "127.0.0.1:%d" % self.target_port,
                "--email", self.email,
                "--tls-ca-file", self.tls.ca_cert, "--tls-server-name", "localhost",
                "--metrics-addr", "127.0.0.1", "--metrics-port", str(self.metrics_port),
                "--log-level", self.log_level, "--user", self.user, *self.extra_args]
        # The token goes in the environment, not in argv (visible in ps).
        env = dict(os.environ)
        env["KENTIK_API_TOKEN"] = self.token
        self.proc = self.ctx.spawn(self.name, argv, env=env)

        # /hc says 200 only once the Control stream is up, which may wait
        # for the first device; "started" is: the status API answers.
        def answering():
            if not self.proc.alive():
                raise TestFailure("kbgp exited with status %s" % self.proc.exited_with())
            status, _ = http_get(self.url("/admin/status"), timeout=1)
            return status == 200
        self.ctx.wait_until(answering, timeout, "kbgp's status API (GET %s) to answer 200"
                            % self.url("/admin/status"))
        return self

    def health(self):
        """(HTTP status, body) of GET /hc."""
        return http_get(self.url("/hc"))

    def status(self):
        return http_get_json(self.url("/admin/status"))

    def sessions(self):
        return http_get_json(self.url("/admin/sessions"))

    def session(self, device_ip):
        return http_get_json(self.url("/admin/sessions/%s" % device_ip))

    def control_connected(self):
        try:
            return bool(self.status().get("ControlStream", {}).get("Connected"))
        except TestFailure:
            return False

    def processes(self):
        """The agent's process tree from `ps`: [{pid, ppid, user, comm}]."""
        return process_tree(self.pid)

    def stop(self, timeout=15):
        """SIGTERM to the supervisor. Returns (exit status, [worker pids
        still alive afterwards]) -- stragglers are then killed by PID."""
        if not self.proc:
            return None, []
        workers = [p["pid"] for p in self.processes() if p["pid"] != self.pid] if self.proc.alive() else []
        status = self.proc.stop(timeout)
        left = []
        for pid in workers:
            if pid_alive(pid):
                left.append(pid)
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        return status, left
