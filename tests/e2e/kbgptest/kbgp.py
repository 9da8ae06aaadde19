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
    registry. `extra_args`: more flags (e.g. ["--control-ttl", "2"])."""

    def __init__(self, ctx, binaries, port, tls, devices, collector, email=EMAIL, token=TOKEN,
                 plaintext=False, log_level="info", name="kbgp-ingest", extra_args=()):
        self.ctx = ctx
        self.binaries = binaries
        self.name = name
        self.port = port
        self.tls = tls
        self.plaintext = plaintext
        self.log_level = log_level
        self.extra_args = list(extra_args)
        # A second backend in the same test gets its own files.
        prefix = "" if name == "kbgp-ingest" else name + "-"
        self.creds_path = ctx.path(prefix + "creds.json")
        self.registry_path = ctx.path(prefix + "registry.json")
        with open(self.creds_path, "w") as f:
            json.dump({"credentials": [{"email": email, "token": token}]}, f, indent=2)
        os.chmod(self.creds_path, 0o600)
        self.write_registry(devices, collector)
        self.proc = None
        self.log = LogFile(ctx.log_path(name))

    def write_registry(self, devices, collector):
        """devices: device IPs, or dicts with "device_ip" and any registry
        fields to set (site_id, device_id, collector, ...); collector:
        "ip:port" of the collector (the default for every entry). Rewriting
        a running backend's registry takes effect on reload() (SIGHUP)."""
        entries = []
        for dev in devices:
            over = dict(dev) if isinstance(dev, dict) else {"device_ip": dev}
            ip = over["device_ip"]
            octet = int(ip.split(".")[-1])
            entry = {"device_ip": ip, "site_id": 0, "company_id": 1001, "device_id": octet,
                     "device_name": "router%d" % octet, "md5_key": "",
                     "collector": collector, "source_ip": ip}
            entry.update(over)
            entries.append(entry)
        tmp = self.registry_path + ".new"
        with open(tmp, "w") as f:
            json.dump({"devices": entries}, f, indent=2)
        os.replace(tmp, self.registry_path)

    def reload(self):
        """SIGHUP: the backend re-reads its registry and credentials."""
        os.kill(self.proc.pid, 1)

    def control_answers(self, device_ip, since=0):
        """The backend's log lines answering a ControlRequest for
        `device_ip` (a known device at --log-level debug: "control answer";
        an unknown one: "unknown device, answered BLOCK_IP"): one per
        ControlRequest the agents sent, none for keepalives."""
        return [l for l in self.log.find("control answer", since=since, device_ip=device_ip)] + \
            [l for l in self.log.find("unknown device, answered BLOCK_IP", since=since, device_ip=device_ip)]

    def start(self, timeout=20):
        argv = [self.binaries.ingest, "--listen", "127.0.0.1:%d" % self.port,
                "--credentials", self.creds_path, "--registry", self.registry_path,
                "--log-level", self.log_level, *self.extra_args]
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
    """kbgp, started as root; it starts its three workers itself. It listens
    on 127.0.0.1:listen_port and on 127.0.0.1 at every port of
    `more_listen_ports` (endpoints() lists them all)."""

    def __init__(self, ctx, binaries, listen_port, target_port, tls, metrics_port,
                 email=EMAIL, token=TOKEN, user="kbgp", log_level="info", name="kbgp",
                 extra_args=(), more_listen_ports=(), env=None):
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
        self.more_listen_ports = list(more_listen_ports)
        # Variables added to (value None: removed from) the agent's
        # environment, e.g. HTTPS_PROXY.
        self.env = dict(env or {})
        self.proc = None
        self.log = LogFile(ctx.log_path(name))

    def endpoints(self):
        """[(ip, port)] where the agent accepts devices."""
        return [("127.0.0.1", p) for p in [self.listen_port] + self.more_listen_ports]

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
                # log_level None: no --log-level flag (the level comes from
                # the environment or --env-file, e.g. test_sighup.py).
                *(["--log-level", self.log_level] if self.log_level else []),
                "--user", self.user, *self.extra_args]
        for port in self.more_listen_ports:
            argv += ["--listen", "127.0.0.1:%d" % port]
        # The token goes in the environment, not in argv (visible in ps).
        env = dict(os.environ)
        env["KENTIK_API_TOKEN"] = self.token
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
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

    def metrics(self):
        """(HTTP status, body text) of GET /metrics."""
        return http_get(self.url("/metrics"))

    def uplink_pid(self):
        for p in self.processes():
            if p["comm"] == "kbgp-uplink":
                return p["pid"]
        return None

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
