"""promtool (Prometheus's checker) for `promtool check metrics`.

Found, in order: $PROMTOOL, `promtool` on PATH, a copy this module
extracted before (/var/tmp/kbgp-promtool/usr/bin/promtool). Otherwise it
is fetched with `apt-get download prometheus` (Debian's package holds it)
and extracted with `dpkg-deb -x` into that directory, without installing
the Prometheus server. None when none of that works (no apt, no network):
tests then skip.
"""

import glob
import os
import shutil
import subprocess
import tempfile

CACHE = "/var/tmp/kbgp-promtool"


def _usable(path):
    return bool(path) and os.access(path, os.X_OK)


def find_promtool(fetch=True, log=print):
    """The path of a working promtool, or None."""
    env = os.environ.get("PROMTOOL")
    if _usable(env):
        return env
    on_path = shutil.which("promtool")
    if on_path:
        return on_path
    cached = os.path.join(CACHE, "usr", "bin", "promtool")
    if _usable(cached):
        return cached
    if not fetch or not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        return None
    work = tempfile.mkdtemp(prefix="kbgp-promtool-")
    try:
        log("promtool: fetching Debian's prometheus package (apt-get download) for it")
        r = subprocess.run(["apt-get", "download", "-q", "prometheus"], cwd=work,
                           capture_output=True, text=True, timeout=300)
        debs = glob.glob(os.path.join(work, "prometheus_*.deb"))
        if r.returncode != 0 or not debs:
            log("promtool: apt-get download prometheus failed: %s" % (r.stderr or r.stdout).strip()[-300:])
            return None
        extracted = os.path.join(work, "x")
        subprocess.run(["dpkg-deb", "-x", debs[0], extracted], check=True, timeout=300)
        os.makedirs(os.path.join(CACHE, "usr", "bin"), exist_ok=True)
        shutil.copy2(os.path.join(extracted, "usr", "bin", "promtool"), cached + ".new")
        os.replace(cached + ".new", cached)
        return cached if _usable(cached) else None
    except (OSError, subprocess.SubprocessError) as e:
        log("promtool: could not extract it: %s" % e)
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_metrics(promtool, text):
    """(ok, output) of `promtool check metrics` on `text` (exposition format
    on stdin). promtool exits non-zero on format errors and prints lint
    problems (naming, HELP) either way; both count as not ok."""
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    output = (r.stdout + r.stderr).strip()
    return r.returncode == 0 and not output, output
