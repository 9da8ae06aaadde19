#!/usr/bin/python3
"""kbgp --version and kbgp-ingest --version print the package version and
the source revision the binaries were built from:

- from a git checkout (KBGP_SRCDIR/.git exists): `git rev-parse --short
  HEAD`, with "-dirty" when `git diff --quiet HEAD` says tracked files differ;
- from a `make dist` tarball (no .git): the first line of .tarball-revision,
  which the dist-hook wrote (so `make distcheck` checks that path);
- neither: "unknown" -- which this test never accepts when one of the two
  exists, so a build that lost its revision fails here.

Needs no root. Exit codes (Automake): 0 pass, 1 fail.
"""
import os
import re
import subprocess
import sys

SRCDIR = os.environ.get("KBGP_SRCDIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILDDIR = os.environ.get("KBGP_BUILDDIR") or os.path.join(SRCDIR, "build")


def fail(message):
    print("FAIL: test_version: %s" % message, flush=True)
    sys.exit(1)


def git(*args):
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    return subprocess.run(["git", "-C", SRCDIR] + list(args), env=env, capture_output=True, text=True)


def expected_revision():
    """(revision, dirty or None when not a checkout, where it came from)."""
    if os.path.exists(os.path.join(SRCDIR, ".git")):
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            fail("git rev-parse failed in %s: %s" % (SRCDIR, head.stderr.strip()))
        dirty = git("diff", "--quiet", "HEAD", "--").returncode != 0
        return head.stdout.strip(), dirty, "git rev-parse --short HEAD"
    recorded = os.path.join(SRCDIR, ".tarball-revision")
    if os.path.exists(recorded):
        with open(recorded) as f:
            rev = f.readline().strip()
        if not rev or rev == "unknown":
            fail("%s holds no revision (%r): the dist-hook did not record one" % (recorded, rev))
        return rev, None, recorded
    return "unknown", None, "neither .git nor .tarball-revision"


def package_version():
    with open(os.path.join(BUILDDIR, "config.h")) as f:
        m = re.search(r'#define PACKAGE_VERSION "([^"]+)"', f.read())
    if not m:
        fail("no PACKAGE_VERSION in %s/config.h" % BUILDDIR)
    return m.group(1)


def version_output(program):
    path = os.path.join(BUILDDIR, program)
    # A clean environment: --version must not depend on KENTIK_* being valid.
    r = subprocess.run([path, "--version"], env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                       text=True, timeout=20)
    if r.returncode != 0:
        fail("%s --version exited %d: %s" % (program, r.returncode, r.stderr.strip()))
    return r.stdout


def main():
    rev, dirty, source = expected_revision()
    version = package_version()
    for program in ("kbgp", "kbgp-ingest"):
        out = version_output(program)
        m = re.fullmatch(r"%s (\S+) \(revision (\S+)\)\n" % re.escape(program), out)
        if not m:
            fail("%s --version printed %r, expected '%s VERSION (revision REV)'" % (program, out, program))
        if m.group(1) != version:
            fail("%s --version says version %s, config.h %s" % (program, m.group(1), version))
        got = m.group(2)
        if dirty is None:
            if got != rev:
                fail("%s --version says revision %s, expected %s (%s)" % (program, got, rev, source))
        else:
            got_hash, _, suffix = got.partition("-")
            if got_hash != rev:
                fail("%s --version says revision %s, but %s is %s (stale build?)" % (program, got, source, rev))
            if (suffix == "dirty") != dirty:
                fail("%s --version says %s, but the work tree is %s" %
                     (program, got, "modified" if dirty else "clean"))
        print("ok: %s" % out.strip())
    print("PASS: test_version (revision from %s)" % source)


if __name__ == "__main__":
    main()
