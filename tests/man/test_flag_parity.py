#!/usr/bin/python3
"""Every flag that `kbgp --help` lists is documented in man/kbgp.8 (OPTIONS)
and every flag documented there is in --help, with the same type word; every
environment variable --help names ($VAR) is in the man page's entry for that
flag and in its ENVIRONMENT section, and so are the web proxy variables.

Automake exit codes: 0 pass, 1 fail, 77 skip (kbgp not built).
Binaries from $KBGP_BUILDDIR, the man page from $KBGP_SRCDIR (both set by
`make check`; by hand: KBGP_BUILDDIR=build python3 tests/man/test_flag_parity.py).
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("KBGP_SRCDIR", os.path.join(HERE, "..", ".."))
BUILDDIR = os.environ.get("KBGP_BUILDDIR", os.path.join(SRCDIR, "build"))
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def help_flags(text):
    """{flag: (type word, [variables])} from --help."""
    flags = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^  --([a-z0-9-]+) (\w+)$", line)
        if m:
            current = m.group(1)
            flags[current] = (m.group(2), [])
            continue
        if re.match(r"^  -h, --help$", line):
            current = "help"
            flags[current] = ("", [])
            continue
        if current and line.startswith("        "):
            flags[current][1].extend(re.findall(r"\$([A-Z_]+)", line))
    return flags


def man_sections(text):
    out = {}
    name = None
    for line in text.splitlines():
        if line.startswith(".SH "):
            name = line[4:].strip().strip('"')
            out[name] = []
        elif name:
            out[name].append(line)
    return out


def unescape(s):
    return s.replace("\\-", "-").replace("\\fR", "").replace("\\fP", "").replace("\\fB", "").replace("\\fI", "")


def man_flags(options_lines):
    """{flag: (type word, entry text)} from the .TP entries of OPTIONS."""
    flags = {}
    i = 0
    while i < len(options_lines):
        if options_lines[i].strip() == ".TP" and i + 1 < len(options_lines):
            head = unescape(options_lines[i + 1])
            body = []
            j = i + 2
            while j < len(options_lines) and options_lines[j].strip() != ".TP":
                body.append(unescape(options_lines[j]))
                j += 1
            names = re.findall(r"--([a-z0-9-]+)", head)
            typ = re.search(r'"\s*(bool|string|int)"', head)
            for n in names:
                flags[n] = (typ.group(1) if typ else "", head + "\n" + "\n".join(body))
            i = j
        else:
            i += 1
    return flags


def main():
    kbgp = os.path.join(BUILDDIR, "kbgp")
    if not os.access(kbgp, os.X_OK):
        print("SKIP: %s is not built" % kbgp)
        return 77
    out = subprocess.run([kbgp, "--help"], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        print("FAIL: kbgp --help exited with %d: %s" % (out.returncode, out.stderr))
        return 1
    helped = help_flags(out.stdout)
    with open(os.path.join(SRCDIR, "man", "kbgp.8"), encoding="utf-8") as f:
        man = f.read()
    sections = man_sections(man)
    documented = man_flags(sections.get("OPTIONS", []))
    env_text = unescape("\n".join(sections.get("ENVIRONMENT", [])))
    problems = []
    for flag in sorted(set(helped) - set(documented)):
        problems.append("--%s is in --help but not in man/kbgp.8 OPTIONS" % flag)
    for flag in sorted(set(documented) - set(helped)):
        problems.append("--%s is in man/kbgp.8 OPTIONS but not in --help" % flag)
    for flag in sorted(set(helped) & set(documented)):
        typ, variables = helped[flag]
        man_typ, entry = documented[flag]
        if typ != man_typ:
            problems.append("--%s: --help says %r, the man page %r" % (flag, typ, man_typ))
        for var in variables:
            if "$" + var not in entry:
                problems.append("--%s: the man page entry does not name $%s" % (flag, var))
            if var not in env_text:
                problems.append("$%s (of --%s) is not in the man page's ENVIRONMENT" % (var, flag))
    for var in PROXY_VARS:
        if var not in env_text:
            problems.append("$%s is not in the man page's ENVIRONMENT" % var)
    if problems:
        print("FAIL: kbgp --help and man/kbgp.8 disagree:\n  " + "\n  ".join(problems))
        return 1
    print("PASS: %d flags in both kbgp --help and man/kbgp.8 (types and variables match)" % len(helped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
