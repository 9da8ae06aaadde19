#!/usr/bin/python3
"""The Debian maintainer scripts on a machine without the kbgp user.

debian/kbgp.postinst must create the system user and group kbgp (a system
uid, no login shell, no home) when they are missing, leave them alone when
they exist (a second `configure` keeps the same uid), and make an existing
/etc/default/kbgp.env readable by root only (it holds the API token);
debian/kbgp.postrm `purge` removes the user again, `remove` keeps it.

The machine's own /etc is never touched: every step runs in a private
mount namespace (unshare -m) in which a copy of /etc without kbgp is bound
over /etc. adduser replaces /etc/passwd by rename, so the whole directory
is bound, not single files.

Automake exit codes: 0 pass, 1 fail, 77 skip (not root, or no
unshare/adduser).
"""
import os
import shutil
import subprocess
import sys
import tempfile

SRCDIR = os.environ.get("KBGP_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSTINST = os.path.join(SRCDIR, "debian", "kbgp.postinst")
POSTRM = os.path.join(SRCDIR, "debian", "kbgp.postrm")
ACCOUNT_FILES = ("passwd", "group", "shadow", "gshadow", "subuid", "subgid")


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def without_kbgp(path):
    """Drop the kbgp lines of one account file of the copied /etc."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.split(":", 1)[0] != "kbgp"]
    with open(path, "w") as f:
        f.writelines(lines)


def in_namespace(etc_copy, script):
    """Runs a shell script with etc_copy bound over /etc, in a mount
    namespace of its own; returns (exit status, output)."""
    wrapped = f"set -e\nmount --bind {etc_copy} /etc\n{script}"
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", wrapped],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    return proc.returncode, proc.stdout


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}")


def main():
    if os.geteuid() != 0:
        skip("needs root (mount namespace)")
    for tool in ("unshare", "adduser", "deluser", "getent"):
        if shutil.which(tool) is None:
            skip(f"{tool} is not installed")
    with tempfile.TemporaryDirectory(prefix="kbgp-postinst-") as tmp:
        etc = os.path.join(tmp, "etc")
        # Only what adduser and getent read; /etc of a distro is small enough
        # either way, but a narrow copy keeps the test quick.
        shutil.copytree("/etc", etc, symlinks=True, ignore_dangling_symlinks=True,
                        ignore=shutil.ignore_patterns("ssl", "alternatives", "X11", "fonts"))
        for name in ACCOUNT_FILES:
            without_kbgp(os.path.join(etc, name))
        os.makedirs(os.path.join(etc, "default"), exist_ok=True)
        env_file = os.path.join(etc, "default", "kbgp.env")
        with open(env_file, "w") as f:
            f.write("KENTIK_API_TOKEN=not-a-real-token\n")
        os.chmod(env_file, 0o644)

        status, out = in_namespace(etc, "getent passwd kbgp || echo absent")
        check(status == 0 and out.strip() == "absent", "the copied /etc has no kbgp user")

        status, out = in_namespace(etc, f"sh {POSTINST} configure && getent passwd kbgp "
                                        f"&& getent group kbgp && stat -c %a /etc/default/kbgp.env")
        check(status == 0, f"postinst configure succeeds: {out.strip()}")
        lines = out.strip().splitlines()
        user = next(line for line in lines if line.startswith("kbgp:x:") and line.count(":") == 6)
        _, _, uid, gid, _, home, shell = user.split(":")
        group = next(line for line in lines if line.startswith("kbgp:x:") and line.count(":") == 3)
        check(int(uid) < 1000, f"kbgp is a system user (uid {uid})")
        check(group.split(":")[2] == gid, "kbgp's primary group is the group kbgp")
        check(shell.endswith("nologin") or shell.endswith("false"), f"no login shell ({shell})")
        check(home == "/nonexistent", f"no home directory ({home})")
        check(not os.path.exists("/nonexistent"), "no home directory created")
        check(lines[-1] == "600", f"the env file becomes 0600 (was 0644, now {lines[-1]})")

        status, out = in_namespace(etc, f"sh {POSTINST} configure && getent passwd kbgp")
        check(status == 0 and out.strip().split(":")[2] == uid,
              "a second configure keeps the user and its uid")

        status, out = in_namespace(etc, f"sh {POSTRM} remove && getent passwd kbgp")
        check(status == 0 and out.strip().startswith("kbgp:"), "postrm remove keeps the user")

        status, out = in_namespace(etc, f"sh {POSTRM} purge && (getent passwd kbgp || echo gone)")
        check(status == 0 and out.strip().endswith("gone"), "postrm purge removes the user")

    # The machine's real accounts are as they were (the test used copies).
    real = subprocess.run(["getent", "passwd", "kbgp"], stdout=subprocess.PIPE, text=True)
    print(f"ok: the host's kbgp user untouched ({'present' if real.returncode == 0 else 'absent'})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, StopIteration, subprocess.TimeoutExpired) as error:
        print(f"FAIL: {error!r}")
        sys.exit(1)
