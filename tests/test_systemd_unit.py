#!/usr/bin/python3
"""The generated systemd unit (contrib/systemd/kbgp.service in the build
dir, made by `make`):

1. `systemd-analyze security --offline=yes` rates its exposure at most 2.0;
2. CapabilityBoundingSet= is exactly the supervisor's start-up and run-time
   capabilities of docs/security.md (without the MD5-only CAP_NET_RAW), and
   it grants no ambient capabilities;
3. its SystemCallFilter= lets through every call the workers' seccomp tables
   allow (docs/security.md, kept equal to the code by the unit tests) and
   the calls the supervisor makes beyond @system-service's usual ones --
   otherwise a worker would get EPERM from systemd for a call its own
   filter allows;
4. the rest of what the agent relies on: Type=notify with WatchdogSec=,
   NoNewPrivileges=yes, RestrictAddressFamilies= with AF_UNIX (sd_notify)
   and AF_INET/AF_INET6, and no EnvironmentFile/ExecStart that puts the
   token on a command line.

Needs no root and no daemons. Exit codes (Automake): 0 pass, 1 fail, 77 skip
(systemd-analyze missing).
"""
import functools
import os
import re
import shutil
import subprocess
import sys

MAX_EXPOSURE = 2.0
# What the supervisor calls beyond everyday I/O (strace of an e2e run):
# starting workers as another user, dropping its own privileges.
SUPERVISOR_CALLS = ["setresuid", "setresgid", "setgroups", "capget", "capset", "prctl",
                    "prlimit64", "memfd_create", "ftruncate", "socketpair", "accept4",
                    "close_range", "clone", "execve", "wait4", "kill", "chdir", "umask",
                    "eventfd2", "seccomp"]
SRCDIR = os.environ.get("KBGP_SRCDIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def fail(message):
    print("FAIL: test_systemd_unit: %s" % message, flush=True)
    sys.exit(1)


def unit_path():
    builddir = os.environ.get("KBGP_BUILDDIR") or os.path.join(SRCDIR, "build")
    return os.path.join(builddir, "contrib", "systemd", "kbgp.service")


def service_settings(path):
    """[(key, value)] of the [Service] section, in order."""
    out, section = [], None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                out.append((key.strip(), value.strip()))
    return out


def values(settings, key):
    return [v for k, v in settings if k == key]


@functools.lru_cache(None)
def expand(name):
    """The calls a syscall group (recursively) or a single call stands for."""
    if not name.startswith("@"):
        return frozenset([name])
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True)
    if out.returncode != 0:
        fail("systemd-analyze syscall-filter %s: %s" % (name, out.stderr.strip()))
    calls = set()
    for line in out.stdout.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            calls |= expand(line)
    return frozenset(calls)


def allowed_calls(filters):
    """The allow-list that SystemCallFilter= lines, in order, make: the first
    (not ~) starts it, later plain lines add, ~ lines remove."""
    allowed = None
    for spec in filters:
        negate = spec.startswith("~")
        names = set()
        for item in spec.lstrip("~").split():
            names |= expand(item)
        if allowed is None:
            if negate:
                fail("SystemCallFilter= starts with a deny list; the unit should allow-list")
            allowed = names
        elif negate:
            allowed -= names
        else:
            allowed |= names
    return allowed or set()


def doc_blocks():
    with open(os.path.join(SRCDIR, "docs", "security.md")) as f:
        doc = f.read()
    return dict(re.findall(r"<!-- BEGIN (.+?) .*?-->\n(.*?)<!-- END \1 -->", doc, re.S))


def table_rows(block):
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            rows.append((cells[0].strip("`"), cells[1]))
    return rows


def main():
    if not shutil.which("systemd-analyze"):
        print("SKIP: test_systemd_unit: systemd-analyze is not installed", flush=True)
        return 77
    path = unit_path()
    if not os.path.exists(path):
        fail("%s is missing: run make first" % path)

    # 1. The exposure score.
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", path],
                         capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out.stdout)
    if not m:
        fail("no exposure level in the output of systemd-analyze security:\n%s%s" % (out.stdout, out.stderr))
    score = float(m.group(1))
    exposed = [line for line in out.stdout.splitlines() if line.startswith("✗")]
    print("systemd-analyze security --offline=yes %s: %.1f; exposed:\n  %s"
          % (path, score, "\n  ".join(exposed)), flush=True)
    if score > MAX_EXPOSURE:
        fail("exposure %.1f is above %.1f" % (score, MAX_EXPOSURE))

    settings = service_settings(path)
    blocks = doc_blocks()

    # 2. Capabilities.
    caps = table_rows(blocks.get("capabilities supervisor", ""))
    documented = {name for name, held in caps if held != "never" and "md5" not in held}
    if not documented:
        fail("docs/security.md lists no capabilities for the supervisor")
    bounding = set(" ".join(values(settings, "CapabilityBoundingSet")).split())
    if bounding != documented:
        fail("CapabilityBoundingSet= is %s, docs/security.md documents %s"
             % (sorted(bounding), sorted(documented)))
    ambient = " ".join(values(settings, "AmbientCapabilities")).split()
    if ambient:
        fail("AmbientCapabilities= grants %s" % ambient)
    print("CapabilityBoundingSet= is the documented %s; no ambient capabilities" % sorted(documented))

    # 3. System calls.
    allowed = allowed_calls(values(settings, "SystemCallFilter"))
    needed = {}
    for worker in ("listener", "uplink", "admin"):
        rows = table_rows(blocks.get("syscalls " + worker, ""))
        if not rows:
            fail("docs/security.md has no seccomp table for the %s" % worker)
        for name, when in rows:
            if "refused" not in when:
                needed.setdefault(name, set()).add(worker)
    for name in SUPERVISOR_CALLS:
        needed.setdefault(name, set()).add("supervisor")
    missing = sorted("%s (%s)" % (n, ", ".join(sorted(w))) for n, w in needed.items()
                     if n not in allowed and _known(n))
    if missing:
        fail("SystemCallFilter= blocks calls the agent makes: %s" % ", ".join(missing))
    print("SystemCallFilter= allows all %d calls the workers' tables and the supervisor need" % len(needed))

    # 4. The rest.
    def one(key):
        v = values(settings, key)
        return v[-1] if v else None
    checks = [
        (one("Type") == "notify", "Type= is %r, want notify" % one("Type")),
        (bool(one("WatchdogSec")), "no WatchdogSec="),
        (one("NoNewPrivileges") == "yes", "NoNewPrivileges= is %r" % one("NoNewPrivileges")),
    ]
    families = set(" ".join(values(settings, "RestrictAddressFamilies")).split())
    checks.append(({"AF_UNIX", "AF_INET", "AF_INET6"} <= families,
                   "RestrictAddressFamilies= is %s, needs AF_UNIX AF_INET AF_INET6" % sorted(families)))
    exec_start = one("ExecStart") or ""
    checks.append(("TOKEN" not in exec_start.upper(), "ExecStart= mentions the token: %s" % exec_start))
    for ok, message in checks:
        if not ok:
            fail(message)
    print("Type=notify, WatchdogSec=%s, NoNewPrivileges=yes, address families %s" % (
        one("WatchdogSec"), " ".join(sorted(families))))
    print("PASS: test_systemd_unit", flush=True)
    return 0


def _known(name):
    """False for a call this architecture does not have (nothing to allow)."""
    return name in expand("@known")


if __name__ == "__main__":
    sys.exit(main())
