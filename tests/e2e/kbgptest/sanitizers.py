"""Builds with `./configure --enable-sanitizers` (ASan + UBSan): one time
factor for every timeout of the harness, and the check that no process of a
test printed a sanitizer report.

A sanitizer report does not always fail a test by itself: a worker that dies
of one is restarted by the supervisor and the sessions may carry on; a leak
is reported only at exit, after the test's checks. So testing.main() scans
every log of the test once all its processes have stopped, and a report
anywhere fails the test."""

import os
import re

# 3: what a sanitizer build needs here (ASan + UBSan run the agent ~2-3x
# slower, LeakSanitizer adds time at exit).
SANITIZER_BUILD_SLOWDOWN = 3.0

# ASan and LSan reports; UBSan's (file:line:col: runtime error: ...); the
# runtimes' own failures (e.g. LeakSanitizer unable to stop the world).
_REPORT = re.compile(r"==\d+==ERROR: (AddressSanitizer|LeakSanitizer)\b|: runtime error: "
                     r"|Sanitizer has encountered a fatal error|Sanitizer CHECK failed")


def slowdown():
    """The factor every timeout of the harness is multiplied by:
    $KBGP_TEST_SLOWDOWN (set for sanitizer builds by use_build()), else 1."""
    try:
        return max(1.0, float(os.environ.get("KBGP_TEST_SLOWDOWN", "1")))
    except ValueError:
        return 1.0


def is_sanitizer_build(builddir):
    """True when `builddir` was configured with --enable-sanitizers."""
    try:
        with open(os.path.join(builddir, "config.h")) as f:
            return any(line.startswith("#define KBGP_SANITIZERS 1") for line in f)
    except OSError:
        return False


def use_build(builddir):
    """Sets the slowdown for a sanitizer build unless the environment
    already says; the environment carries it to every helper process."""
    if builddir and "KBGP_TEST_SLOWDOWN" not in os.environ and is_sanitizer_build(builddir):
        os.environ["KBGP_TEST_SLOWDOWN"] = str(SANITIZER_BUILD_SLOWDOWN)


def reports_in(directory, context_lines=40):
    """[(log path, excerpt)] of every sanitizer report in the *.log files
    under `directory`; the excerpt is the report's first lines."""
    found = []
    for root, _dirs, files in os.walk(directory):
        for name in sorted(files):
            if not name.endswith(".log"):
                continue
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            i = 0
            while i < len(lines):
                if _REPORT.search(lines[i]):
                    found.append((path, "\n".join(lines[i:i + context_lines])))
                    i += context_lines
                else:
                    i += 1
    return found


# AddressSanitizer's shadow memory on x86-64, low shadow through high shadow
# (the gap between them is mapped without access). It holds one state byte
# per 8 bytes of application memory, never their contents, and is terabytes
# large: tests that search a process's memory (/proc/<pid>/mem) skip it.
ASAN_SHADOW = (0x7fff8000, 0x10007fff8000)


def is_shadow(lo, hi):
    """True when the mapping [lo, hi) lies in ASan's shadow memory."""
    return lo >= ASAN_SHADOW[0] and hi <= ASAN_SHADOW[1]
