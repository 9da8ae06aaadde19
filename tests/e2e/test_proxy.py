#!/usr/bin/python3
"""Web proxies, through real HTTP CONNECT proxies with Basic authentication
on loopback: device -> kbgp -> proxy -> kbgp-ingest (TLS) -> collector.

1. tinyproxy, the right password, HTTPS_PROXY (uppercase, which gRPC alone
   would ignore): the session comes up and carries routes; the agent says it
   uses the proxy; tinyproxy logged the CONNECT to the backend;
2. the wrong password: the agent logs "web proxy refused the CONNECT tunnel:
   401 Unauthorized" (tinyproxy answers a failed Basic check with 401; squid,
   in part 4, with 407) with the proxy named (never the password), keeps
   trying with a growing delay (no tight loop), and its device never reaches
   Established;
3. NO_PROXY (lowercase no_proxy, a CIDR block) covering the target: the
   agent connects directly although https_proxy points at a dead port;
4. squid (if installed), a password with '@', '%', ':', '/', '#', a space
   and a non-ASCII letter, percent-encoded in https_proxy (gRPC alone would
   silently go direct): the session comes up, and squid's access log shows
   the authenticated tunnel; with a wrong password squid's 407 is logged.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import re
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.errors import SkipTest  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402
from kbgptest.webproxy import Squid, TinyProxy  # noqa: E402

GOOD, GOOD_ASN = "127.0.0.3", 65003
BADPW, BADPW_ASN = "127.0.0.4", 65004
DIRECT, DIRECT_ASN = "127.0.0.5", 65005
SPECIAL, SPECIAL_ASN = "127.0.0.6", 65006
TINY_PASSWORD = "tiny-Pass.word_42"  # tinyproxy's config takes [-a-zA-Z0-9._] only
SPECIAL_PASSWORD = "p@ss%w:rd/?#x y\u00e9"
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
              "grpc_proxy")
REFUSED = "web proxy refused the CONNECT tunnel: "


def proxy_env(**set_vars):
    """Only the given proxy variables; every other one removed."""
    env = {k: None for k in PROXY_VARS}
    env.update(set_vars)
    return env


def check_no_password(ctx, agent, password):
    for secret in (password, urllib.parse.quote(password, safe="")):
        ctx.check(secret not in agent.log.text(), "the proxy password appears in %s's log" % agent.name)


def refusal_times(agent):
    """Times (seconds of the day, from the JSON "time") of every refusal
    the agent logged, loud or repeated at debug level."""
    out = []
    for line, obj in agent.log.records():
        if obj and REFUSED in obj.get("message", ""):
            t = obj.get("time", "")
            m = re.match(r".*T(\d\d):(\d\d):(\d\d(?:\.\d+)?)Z", t)
            if m:
                out.append(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
    return out


def test(ctx):
    topo = Topology(ctx)
    topo.start_collector([(GOOD, GOOD_ASN), (BADPW, BADPW_ASN), (DIRECT, DIRECT_ASN),
                          (SPECIAL, SPECIAL_ASN)])
    ingest = topo.start_ingest([GOOD, BADPW, DIRECT, SPECIAL])
    target = "127.0.0.1:%d" % ingest.port
    tiny = TinyProxy(ctx, ctx.free_port(), "kbgp", TINY_PASSWORD).start()
    ctx.step("tinyproxy on 127.0.0.1:%d, BasicAuth kbgp/%s" % (tiny.port, "*" * len(TINY_PASSWORD)))

    # 1. The right password, uppercase variable.
    agent = topo.start_agent(name="kbgp-proxied", log_level="debug",
                             env=proxy_env(HTTPS_PROXY=tiny.url()))
    routes = make_routes(300, 30)
    dev = topo.start_device("bird", GOOD, GOOD_ASN, routes, agent=agent)
    topo.wait_established(dev, timeout=40)
    topo.wait_routes(dev, routes, timeout=60)
    topo.check_routes(dev, routes)
    uses = agent.log.find("gRPC connections go through the web proxy", variable="$HTTPS_PROXY",
                          proxy="http://kbgp@127.0.0.1:%d" % tiny.port)
    ctx.check(uses, "the agent did not log that it uses the proxy from $HTTPS_PROXY")
    ctx.check(agent.log.find("web proxy tunnel open", target=target),
              "the agent did not log an open tunnel to %s" % target)
    ctx.check(tiny.connects(target), "tinyproxy's log shows no CONNECT to %s:\n%s"
              % (target, "\n".join(tiny.log_text().splitlines()[-10:])))
    check_no_password(ctx, agent, TINY_PASSWORD)
    # The password is in no process's environment or arguments but the
    # supervisor's own (root only): not the workers'.
    for p in agent.processes()[1:]:
        for what in ("environ", "cmdline"):
            with open("/proc/%d/%s" % (p["pid"], what), "rb") as f:
                ctx.check(TINY_PASSWORD.encode() not in f.read(),
                          "the proxy password is in /proc/%d/%s (%s)" % (p["pid"], what, p["comm"]))
    ctx.step("the proxy password is in no worker's environment or arguments")
    ctx.step("through tinyproxy with HTTPS_PROXY: Established, %d routes at the collector; "
             "tinyproxy logged: %s" % (len(routes), tiny.connects(target)[0].strip()))

    # 2. The wrong password.
    bad = topo.start_agent(name="kbgp-wrongpass", log_level="debug",
                           env=proxy_env(HTTPS_PROXY=tiny.url(password="not-the-password")))
    bad_dev = topo.start_device("bird", BADPW, BADPW_ASN, make_routes(10, 0), agent=bad)
    lines = ctx.wait_until(lambda: bad.log.find(REFUSED + "401", level="error", status=401,
                                                proxy="http://kbgp@127.0.0.1:%d" % tiny.port), 20,
                           "the agent with the wrong password to log %r" % REFUSED)
    ctx.step("kbgp (wrong password) logged: %s" % lines[0].strip())
    check_no_password(ctx, bad, "not-the-password")
    time.sleep(8)
    times = refusal_times(bad)
    gaps = [b - a for a, b in zip(times, times[1:])]
    ctx.step("refusals at +%s s" % ", +".join("%.1f" % (t - times[0]) for t in times))
    ctx.check(len(times) >= 3, "only %d refused attempts in ~10 s: the agent does not retry" % len(times))
    # gRPC's reconnect backoff: 0.5 s doubling (with jitter) up to 30 s,
    # i.e. about 5 attempts in 8 s; a loop without backoff makes hundreds.
    ctx.check(len(times) <= 15, "%d refused attempts in ~10 s: a retry loop without backoff" % len(times))
    ctx.check(max(gaps[-2:]) > 1.5 * gaps[0],
              "the delay between attempts does not grow (gaps %s s): no backoff"
              % ["%.1f" % g for g in gaps])
    ctx.check(bad_dev.session_state() != "Established", "the device behind the wrong password is Established")
    ctx.step("wrong password: clear 401 log line, %d attempts with growing delays, no session" % len(times))
    bad.stop()
    bad_dev.stop()

    # 3. NO_PROXY covers the target: direct, although the proxy is dead.
    direct = topo.start_agent(name="kbgp-noproxy", log_level="debug",
                              env=proxy_env(https_proxy="http://127.0.0.1:1", no_proxy="10.9.9.9,127.0.0.0/8"))
    direct_dev = topo.start_device("bird", DIRECT, DIRECT_ASN, make_routes(20, 0), agent=direct)
    topo.wait_established(direct_dev, timeout=40)
    ctx.check(direct.log.find("the target is in NO_PROXY: gRPC connects directly", target=target),
              "the agent did not log that NO_PROXY sends it direct")
    ctx.step("no_proxy=127.0.0.0/8: direct connection, Established")
    direct.stop()
    direct_dev.stop()

    # 4. A password with reserved and non-ASCII characters (squid).
    try:
        squid = Squid(ctx, ctx.free_port(), "kbgp", SPECIAL_PASSWORD).start()
    except SkipTest as e:
        ctx.step("SKIPPED part 4: %s" % e)
        return
    url = squid.url()
    ctx.step("squid on 127.0.0.1:%d; https_proxy=%s" % (squid.port, url.replace(url.split(":")[2].split("@")[0], "***")))
    special = topo.start_agent(name="kbgp-special", log_level="debug", env=proxy_env(https_proxy=url))
    special_dev = topo.start_device("bird", SPECIAL, SPECIAL_ASN, make_routes(50, 5), agent=special)
    topo.wait_established(special_dev, timeout=40)
    ctx.check(special.log.find("gRPC connections go through the web proxy", variable="$https_proxy"),
              "the agent did not log that it uses the proxy from $https_proxy")
    check_no_password(ctx, special, SPECIAL_PASSWORD)
    special.stop()  # squid logs a tunnel when it closes
    special_dev.stop()
    tunnels = ctx.wait_until(lambda: squid.tunnels(target), 10,
                             "squid's access log to show the tunnel to %s" % target)
    ctx.check(any(" kbgp " in t for t in tunnels), "squid's tunnel lines do not name user kbgp: %s" % tunnels)
    ctx.step("through squid with a password holding @ %% : / ? # space and \u00e9: Established; squid "
             "logged: %s" % tunnels[0].strip())

    # ... and the same agent with a wrong password there: squid's 407.
    wrong = topo.start_agent(name="kbgp-special-wrong", log_level="debug",
                             env=proxy_env(https_proxy=squid.url(password=SPECIAL_PASSWORD + "x")))
    lines = ctx.wait_until(lambda: wrong.log.find(REFUSED + "407", level="error", status=407,
                                                  proxy="http://kbgp@127.0.0.1:%d" % squid.port), 20,
                           "the agent with a wrong password for squid to log %r" % (REFUSED + "407"))
    ctx.step("kbgp (wrong password for squid) logged: %s" % lines[0].strip())
    check_no_password(ctx, wrong, SPECIAL_PASSWORD)


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_proxy", __doc__, tools=("bird", "birdc", "openssl", "ps", "tinyproxy")))
