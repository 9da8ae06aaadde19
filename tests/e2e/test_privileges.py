#!/usr/bin/python3
"""Privilege separation on a running agent (issue 4), through kbgp ->
kbgp-ingest (TLS) -> collector BIRD with a BIRD device:

1. /proc/<pid>/status of every worker: uid and gid (real, effective, saved,
   fs) those of the user `kbgp`, not root, no supplementary groups; CapInh,
   CapPrm, CapEff, CapBnd, CapAmb all 0; NoNewPrivs 1; Seccomp 2; cwd /;
   the resource limits of docs/security.md; no descriptor to a file or
   directory beyond stdin/stdout/stderr.
2. The supervisor: root, CapPrm = CapEff = exactly the run-time set that
   docs/security.md documents (CAP_SETUID, CAP_SETGID), CapInh, CapBnd and
   CapAmb 0, NoNewPrivs 1, cwd /; with --enable-md5-support the set also
   holds CAP_NET_RAW. Without CAP_KILL it still kills a stuck worker (one
   stopped with SIGSTOP) when it shuts down.
3. Only with binaries built by `configure --enable-test-triggers` (else the
   test ends with SKIP, 77, after parts 1 and 2 passed): each worker
   performs a system call its seccomp filter forbids -- the admin on GET
   /test/forbidden-syscall, listener and uplink on SIGUSR2 -- and dies of
   SIGSYS; the supervisor logs "worker died" with the worker, cause SIGSYS
   and the call (socket, socket, execve), restarts it (a new pid, which
   passes part 1 again, Restarts 1 in /admin/status), and the agent keeps
   working: the device's session stays up and its withdrawals still reach
   the collector, and a second device connecting afterwards gets its routes
   through.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built; or, for part 3, without test triggers).
"""
import os
import pwd
import re
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.errors import SkipTest, TestFailure  # noqa: E402
from kbgptest.kbgp import WORKERS, repo_root  # noqa: E402
from kbgptest.net import http_get  # noqa: E402
from kbgptest.procs import pid_alive  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

DEV1, ASN1 = "127.0.0.3", 65003
DEV2, ASN2 = "127.0.0.4", 65004
USER = "kbgp"
NAME_OF = {"kbgp-listener": "listener", "kbgp-uplink": "uplink", "kbgp-admin": "admin"}
# What each worker's trigger calls, and what its filter forbids.
FORBIDDEN = {"admin": "socket", "listener": "socket", "uplink": "execve"}
# Compiled into every worker only with --enable-test-triggers (common/test_trigger.cc).
TRIGGER_TEXT = b"test trigger: the forbidden system call was not stopped"
# docs/security.md, "Resource limits": /proc/<pid>/limits name -> per worker.
LIMITS = {
    "Max core file size": {"listener": "0", "uplink": "0", "admin": "0"},
    "Max locked memory": {"listener": "0", "uplink": "0", "admin": "0"},
    "Max msgqueue size": {"listener": "0", "uplink": "0", "admin": "0"},
    "Max processes": {"listener": "0", "uplink": "1024", "admin": "0"},
    "Max open files": {"admin": "1024"},
}
CAP_FALLBACK = {"CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
                "CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13}


def cap_numbers():
    """CAP_* name -> bit, from the kernel header (a few known ones without it)."""
    numbers = dict(CAP_FALLBACK)
    try:
        with open("/usr/include/linux/capability.h") as f:
            for m in re.finditer(r"^#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$", f.read(), re.M):
                numbers[m.group(1)] = int(m.group(2))
    except OSError:
        pass
    return numbers


def documented_supervisor_caps(md5):
    """The run-time capabilities docs/security.md lists for the supervisor."""
    path = os.path.join(os.environ.get("KBGP_SRCDIR") or repo_root(), "docs", "security.md")
    with open(path) as f:
        doc = f.read()
    m = re.search(r"<!-- BEGIN capabilities supervisor .*?-->\n(.*?)<!-- END capabilities supervisor -->",
                  doc, re.S)
    if not m:
        raise TestFailure("%s has no capabilities block for the supervisor" % path)
    caps = set()
    for row in m.group(1).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`CAP_"):
            continue
        held = cells[1]
        if "run time" in held and (md5 or "md5" not in held):
            caps.add(cells[0].strip("`"))
    if not caps:
        raise TestFailure("%s lists no run-time capability for the supervisor" % path)
    return caps


def cap_mask(names):
    numbers = cap_numbers()
    return sum(1 << numbers[n] for n in names)


def cap_names(mask):
    by_bit = {v: k for k, v in cap_numbers().items()}
    return sorted(by_bit.get(b, "bit%d" % b) for b in range(64) if mask >> b & 1)


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}


def proc_limits(pid):
    """/proc/<pid>/limits: name -> (soft, hard)."""
    out = {}
    with open("/proc/%d/limits" % pid) as f:
        for line in f.readlines()[1:]:
            m = re.match(r"^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
            if m:
                out[m.group(1)] = (m.group(2), m.group(3))
    return out


def check_worker(ctx, name, pid):
    st = proc_status(pid)
    pw = pwd.getpwnam(USER)
    uids, gids = st["Uid"].split(), st["Gid"].split()
    ctx.check(uids == [str(pw.pw_uid)] * 4 and pw.pw_uid != 0,
              "%s (pid %d) runs with uids %s, want %d (%s) for all four" % (name, pid, uids, pw.pw_uid, USER))
    ctx.check(gids == [str(pw.pw_gid)] * 4 and pw.pw_gid != 0,
              "%s (pid %d) runs with gids %s, want %d for all four" % (name, pid, gids, pw.pw_gid))
    ctx.check(st.get("Groups", "") == "", "%s has supplementary groups %r" % (name, st.get("Groups")))
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        ctx.check(int(st[key], 16) == 0, "%s (pid %d) %s is %s (%s), want 0"
                  % (name, pid, key, st[key], ", ".join(cap_names(int(st[key], 16)))))
    ctx.check(st.get("NoNewPrivs") == "1", "%s NoNewPrivs is %r, want 1" % (name, st.get("NoNewPrivs")))
    ctx.check(st.get("Seccomp") == "2", "%s Seccomp is %r, want 2 (filter)" % (name, st.get("Seccomp")))
    cwd = os.readlink("/proc/%d/cwd" % pid)
    ctx.check(cwd == "/", "%s's working directory is %s, want /" % (name, cwd))
    limits = proc_limits(pid)
    for limit, per_worker in LIMITS.items():
        if name in per_worker:
            want = per_worker[name]
            ctx.check(limits.get(limit) == (want, want), "%s %s is %s, want %s"
                      % (name, limit, limits.get(limit), want))
    files = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile
        if int(fd) > 2 and target.startswith("/") and not target.startswith("/memfd:"):
            files.append("%s -> %s" % (fd, target))
    ctx.check(not files, "%s holds descriptors to files or directories: %s" % (name, files))
    return "%s pid %d: uid/gid %s/%s, Cap* 0, NoNewPrivs 1, Seccomp 2, cwd /" % (
        name, pid, uids[0], gids[0])


def check_supervisor(ctx, agent, md5):
    st = proc_status(agent.pid)
    ctx.check(st["Uid"].split() == ["0"] * 4, "the supervisor's uids are %s, want root" % st["Uid"])
    want = documented_supervisor_caps(md5)
    for key in ("CapPrm", "CapEff"):
        have = int(st[key], 16)
        ctx.check(have == cap_mask(want), "the supervisor's %s is %s = %s, want exactly the documented %s"
                  % (key, st[key], cap_names(have), sorted(want)))
    for key in ("CapInh", "CapBnd", "CapAmb"):
        ctx.check(int(st[key], 16) == 0, "the supervisor's %s is %s (%s), want 0"
                  % (key, st[key], cap_names(int(st[key], 16))))
    ctx.check(st.get("NoNewPrivs") == "1", "the supervisor's NoNewPrivs is %r" % st.get("NoNewPrivs"))
    cwd = os.readlink("/proc/%d/cwd" % agent.pid)
    ctx.check(cwd == "/", "the supervisor's working directory is %s, want /" % cwd)
    ctx.step("%s (pid %d, md5 %s): root with exactly %s; CapBnd, CapInh, CapAmb 0; NoNewPrivs 1"
             % (agent.name, agent.pid, "on" if md5 else "off", ", ".join(sorted(want))))


def workers_of(agent):
    """{"listener": pid, ...} from the supervisor's children."""
    out = {}
    for p in agent.processes():
        if p["ppid"] == agent.pid and p["comm"] in NAME_OF:
            out[NAME_OF[p["comm"]]] = p["pid"]
    return out


def all_ready(agent):
    """The workers, once each reports ready in /admin/status (a worker
    confines itself before it says ready; until then it may be between
    dropping its uid and installing its filter)."""
    workers = workers_of(agent)
    states = agent.status().get("Workers") or {}
    for name in NAME_OF.values():
        w = states.get(name) or {}
        if w.get("State") != "ready" or w.get("PID") != workers.get(name):
            return None
    return workers


def check_all(ctx, agent, md5=False):
    check_supervisor(ctx, agent, md5)
    workers = ctx.wait_until(lambda: all_ready(agent), 15, "%s's three workers to report ready" % agent.name,
                             describe=lambda: str(agent.status().get("Workers")))
    ctx.check(sorted(workers) == sorted(NAME_OF.values()),
              "%s's workers are %s, want all three" % (agent.name, sorted(workers)))
    for name, pid in sorted(workers.items()):
        ctx.step(check_worker(ctx, name, pid))


def have_triggers(builddir):
    for worker in WORKERS:
        with open(os.path.join(builddir, worker), "rb") as f:
            if TRIGGER_TEXT not in f.read():
                return False
    return True


def kill_by_trigger(ctx, agent, name):
    """Makes worker `name` call what its filter forbids; checks death,
    log line, restart and the new process. Returns the new pid."""
    old = workers_of(agent)[name]
    mark = agent.log.mark()
    if name == "admin":
        status, body = http_get(agent.url("/test/forbidden-syscall"), timeout=3)
        ctx.step("GET /test/forbidden-syscall: %s %s" % (status, body[:80]))
    else:
        os.kill(old, signal.SIGUSR2)
        ctx.step("SIGUSR2 to the %s (pid %d)" % (name, old))
    died = ctx.wait_until(lambda: agent.log.find("worker died", since=mark, worker=name), 10,
                          "the supervisor to log the death of the %s" % name)
    line = died[0].strip()
    ctx.step("supervisor: %s" % line)
    record = [obj for text, obj in agent.log.records(mark) if obj and text.strip() == line][0]
    ctx.check(str(record.get("pid")) == str(old), "the death line names pid %s, want %d" % (record.get("pid"), old))
    ctx.check("SIGSYS" in str(record.get("cause")), "the %s died of %r, want SIGSYS" % (name, record.get("cause")))
    ctx.check(record.get("syscall") == FORBIDDEN[name], "the supervisor says the %s called %r, want %r"
              % (name, record.get("syscall"), FORBIDDEN[name]))
    ctx.check(not pid_alive(old), "the old %s (pid %d) is still alive" % (name, old))
    ctx.wait_until(lambda: agent.log.find("worker started", since=mark, worker=name), 10,
                   "the supervisor to restart the %s" % name)

    def ready():
        new = workers_of(agent).get(name)
        if not new or new == old:
            return None
        w = (agent.status().get("Workers") or {}).get(name) or {}
        return new if w.get("PID") == new and w.get("State") == "ready" else None
    new = ctx.wait_until(ready, 15, "the restarted %s to report ready in /admin/status" % name,
                         describe=lambda: str((agent.status().get("Workers") or {}).get(name)))
    restarts = agent.status()["Workers"][name].get("Restarts")
    ctx.check(restarts == 1, "/admin/status says the %s restarted %r times, want 1" % (name, restarts))
    ctx.step("the %s is back as pid %d (Restarts 1); %s" % (name, new, check_worker(ctx, name, new)))
    return new


def stop_with_a_stuck_worker(ctx, agent):
    """SIGSTOP the admin, SIGTERM the supervisor: the admin cannot read its
    Shutdown, so after the grace period the supervisor SIGKILLs it -- without
    CAP_KILL, through a child that takes the worker's uid."""
    admin = workers_of(agent)["admin"]
    os.kill(admin, signal.SIGSTOP)
    ctx.step("%s: admin (pid %d) stopped with SIGSTOP; SIGTERM to the supervisor" % (agent.name, admin))
    status, left = agent.stop(timeout=20)
    ctx.check(not left, "workers of %s still running after it exited: %s" % (agent.name, left))
    ctx.check(status == 0, "%s exited with status %s, want 0" % (agent.name, status))
    ctx.check(agent.log.find("worker did not stop in time", worker="admin"),
              "%s did not log that it had to kill the stuck admin" % agent.name)
    ctx.check(not agent.log.find("cannot signal worker"),
              "%s could not signal a worker: %s" % (agent.name, agent.log.find("cannot signal worker")))
    ctx.step("%s killed its stuck admin after the grace period and exited 0" % agent.name)


def test(ctx):
    topo = Topology(ctx)
    topo.start_collector([(DEV1, ASN1), (DEV2, ASN2)])
    topo.start_ingest([DEV1, DEV2])
    agent = topo.start_agent()
    routes = make_routes(200, 20)
    dev1 = topo.start_device("bird", DEV1, ASN1, routes)
    topo.wait_established(dev1, timeout=30)
    topo.wait_routes(dev1, routes, timeout=30)

    # 1 and 2: the process layout of a serving agent.
    check_all(ctx, agent)
    md5_agent = topo.start_agent(name="kbgp-md5", extra_args=["--enable-md5-support=true"])
    check_all(ctx, md5_agent, md5=True)
    stop_with_a_stuck_worker(ctx, md5_agent)

    # 3: forbidden system calls.
    if not have_triggers(ctx.binaries.builddir):
        raise SkipTest("the /proc checks passed; the forbidden-syscall part needs binaries built with "
                       "./configure --enable-test-triggers (%s has none)" % ctx.binaries.builddir)
    for name in ("admin", "listener", "uplink"):
        kill_by_trigger(ctx, agent, name)
        ctx.check(dev1.established(), "the device's session went down when the %s died: %s"
                  % (name, topo.describe_session(dev1)))
    check_supervisor(ctx, agent, md5=False)
    deaths = agent.log.find("worker died")
    ctx.check(len(deaths) == 3, "the supervisor logged %d worker deaths, want the 3 triggered:\n%s"
              % (len(deaths), "\n".join(deaths)))

    # The agent keeps working: the old session carries changes, a new one
    # comes up and carries its routes.
    keep = [r for r in routes if r.index % 2 == 0]
    dev1.set_routes(keep)
    topo.wait_routes(dev1, keep, timeout=30)
    topo.check_routes(dev1, keep)
    routes2 = make_routes(50, 5)
    dev2 = topo.start_device("bird", DEV2, ASN2, routes2)
    topo.wait_established(dev2, timeout=30)
    topo.wait_routes(dev2, routes2, timeout=30)
    ctx.wait_until(lambda: agent.health()[0] == 200, 10, "GET /hc to answer 200 again")
    st = agent.status()
    ctx.check(st.get("ActiveSessions") == 2, "ActiveSessions is %r, want 2" % st.get("ActiveSessions"))
    ctx.step("after three SIGSYS deaths the agent relays both sessions; /hc answers 200")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_privileges", __doc__))
