#!/usr/bin/python3
"""The man pages render without a warning: `man --warnings -E UTF-8 -l`
(groff, all warnings) finds nothing, and `mandoc -Tlint -W warning` finds
nothing when mandoc is installed (apt-get install mandoc; skipped silently
otherwise, groff alone is then the check).

Automake exit codes: 0 pass, 1 fail, 77 skip (neither man nor mandoc).
"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("KBGP_SRCDIR", os.path.join(HERE, "..", ".."))
PAGES = ("man/kbgp.8", "man/kbgp-ingest.8")


def main():
    have_man = shutil.which("man")
    have_mandoc = shutil.which("mandoc")
    if not have_man and not have_mandoc:
        print("SKIP: neither man (man-db) nor mandoc is installed")
        return 77
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80", MAN_KEEP_FORMATTING="")
    problems = []
    for page in PAGES:
        path = os.path.join(SRCDIR, page)
        if have_man:
            r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", path], env=env,
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0 or r.stderr.strip():
                problems.append("man --warnings %s (exit %d):\n%s" % (page, r.returncode, r.stderr.strip()))
        if have_mandoc:
            r = subprocess.run(["mandoc", "-Tlint", "-W", "warning", path], env=env,
                               capture_output=True, text=True, timeout=60)
            text = (r.stdout + r.stderr).strip()
            if r.returncode != 0 or text:
                problems.append("mandoc -Tlint %s (exit %d):\n%s" % (page, r.returncode, text))
    if problems:
        print("FAIL:\n" + "\n".join(problems))
        return 1
    print("PASS: %s render cleanly (%s)" % (", ".join(PAGES), " and ".join(
        t for t, ok in (("man --warnings", have_man), ("mandoc -Tlint", have_mandoc)) if ok)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
