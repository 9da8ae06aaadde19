#!/usr/bin/python3
"""Secrets never leak, in one run through kbgp -> kbgp-ingest (TLS) ->
collector BIRD with a BIRD device:

- the API token (unique to this run), a second agent's wrong token, and a
  TCP-MD5 key (in kbgp-ingest's registry, so its Control answers carry it
  to the agent) appear in
- no log line of any process of the run (kbgp and its workers at
  --log-level trace, with gRPC's http and api tracers and GRPC_VERBOSITY
  debug in the agents' environment; kbgp-ingest at debug; BIRD), during the
  session and through its end and the agents' shutdown;
- no process's argv (/proc/*/cmdline, every process on the host) and no
  process's environment (/proc/*/environ: the supervisor gets the token
  there and must scrub it);
- no answer of the status API (/hc, /admin/status, /admin/sessions,
  /admin/sessions/<ip>, /metrics, an unknown path), headers included;
- the memory of the listener and the admin (they are never sent one).

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import sys
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import sanitizers  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

DEV, ASN = "127.0.0.3", 65003
# Tracers that print request headers: the agent must not pass them on.
GRPC_DEBUG_ENV = {"GRPC_TRACE": "http,api", "GRPC_VERBOSITY": "debug"}


def secret(kind):
    return "%s-%s" % (kind, os.urandom(12).hex())


def fetch(url):
    """Status line, headers and body of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return "%d %s\n%s\n%s" % (r.status, r.reason, r.headers, r.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return "%d %s\n%s\n%s" % (e.code, e.reason, e.headers, e.read().decode("utf-8", "replace"))


def proc_files(name):
    """(pid, command, contents of /proc/<pid>/<name>) of every process."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/%s" % (pid, name), "rb") as f:
                data = f.read()
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue  # gone, or a kernel thread
        yield int(pid), comm, data


def memory_contains(pid, needles):
    """Which of `needles` (bytes) occur in the readable memory of `pid`."""
    found = set()
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if sanitizers.is_shadow(start, end):
                continue  # a sanitizer build's shadow: terabytes, never data
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            found |= {n for n in needles if n in data}
    return found


def test(ctx):
    token, wrong_token, md5_key = secret("token"), secret("wrong-token"), secret("md5key")
    secrets = {"the API token": token, "the wrong API token": wrong_token, "the MD5 key": md5_key}

    def check_text(where, text):
        data = text if isinstance(text, bytes) else text.encode()
        for what, value in secrets.items():
            ctx.check(value.encode() not in data, "%s appears in %s" % (what, where))

    topo = Topology(ctx)
    topo.start_collector([(DEV, ASN)])
    ingest = topo.start_ingest([{"device_ip": DEV, "md5_key": md5_key}], token=token, log_level="debug")
    agent = topo.start_agent(token=token, log_level="trace", env=GRPC_DEBUG_ENV)
    wrong = topo.start_agent(name="kbgp-wrong-token", token=wrong_token, log_level="trace",
                             env=GRPC_DEBUG_ENV)
    routes = make_routes(100, 10)
    device = topo.start_device("bird", DEV, ASN, routes)
    topo.wait_established(device, timeout=30)
    topo.wait_routes(device, routes, timeout=30)
    # The key reached the agent: pushed when the Control stream opened, or
    # in the answer to the session's ControlRequest.
    ctx.check(ingest.log.find("TCP-MD5 key") or ingest.log.find("control answer", device_ip=DEV),
              "kbgp-ingest logged neither a pushed TCP-MD5 key nor a Control answer for %s: the MD5 "
              "key may never have reached the agent" % DEV)
    ctx.wait_until(lambda: wrong.log.find("UNAUTHENTICATED"), 20,
                   "the agent with the wrong token to be refused (UNAUTHENTICATED)")
    ctx.step("a session is relayed; the second agent was refused for its token")

    # argv and environment of every process, while everything runs.
    seen = 0
    for what in ("cmdline", "environ"):
        for pid, comm, data in proc_files(what):
            seen += 1
            check_text("/proc/%d/%s (%s)" % (pid, what, comm), data)
    ctx.step("no secret in the argv or environment of any of %d processes" % (seen // 2))

    # Listener and admin never receive a secret: not even their memory has one.
    workers = {p["comm"]: p["pid"] for p in agent.processes() if p["ppid"] == agent.pid}
    for comm in ("kbgp-listener", "kbgp-admin"):
        names = {v.encode(): k for k, v in secrets.items()}
        leaked = sorted(names[n] for n in memory_contains(workers[comm], names))
        ctx.check(not leaked, "the memory of %s holds %s" % (comm, ", ".join(leaked)))
    ctx.step("neither the listener's nor the admin's memory holds a secret")

    # Every answer of the status API, of both agents.
    for a in (agent, wrong):
        paths = ["/hc", "/admin/status", "/admin/status?pretty", "/admin/sessions",
                 "/admin/sessions/%s" % DEV, "/metrics", "/no/such/path"]
        for path in paths:
            check_text("%s's answer to GET %s" % (a.name, path), fetch(a.url(path)))
    ctx.step("no secret in any status API answer")

    # Every log line, after the session ended and the agents stopped.
    device.stop()
    ctx.wait_until(lambda: agent.status().get("ActiveSessions") == 0, 20, "the session to end at kbgp")
    for a in (agent, wrong):
        status, left = a.stop()
        ctx.check(not left and status == 0, "%s stopped with status %s, workers left %s" % (a.name, status, left))
    ingest.stop()
    lines = 0
    for name in sorted(os.listdir(ctx.dir)):
        if name.endswith(".log"):
            with open(ctx.path(name), "rb") as f:
                for n, line in enumerate(f, 1):
                    lines += 1
                    check_text("%s line %d: %s" % (name, n, line[:200]), line)
    trace_lines = len(agent.log.find("chttp2")) + len(agent.log.find("HTTP:"))
    ctx.check(trace_lines == 0, "gRPC's tracers wrote %d lines into kbgp's log: GRPC_TRACE reached the uplink"
              % trace_lines)
    ctx.step("no secret in any of %d log lines (kbgp at trace level, gRPC tracers requested)" % lines)


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_secrets", __doc__))
