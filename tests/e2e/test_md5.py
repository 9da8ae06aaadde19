#!/usr/bin/python3
"""TCP-MD5 protected BGP sessions, keys from the backend (issue 6). Real
BIRD and FRR devices with `password`, through kbgp (--enable-md5-support)
-> kbgp-ingest (TLS) -> collector BIRD (plain: MD5 is device <-> agent).

Pushed keys (kbgp-ingest pushes its devices' keys when the Control stream
opens; the agent captures SYNs on `any`):
 1. BIRD and FRR devices with keys establish on their first SYN (a packet
    socket of the test counts exactly one signed SYN each), no key lookup
    was needed, /admin/sessions/<ip> says MD5 true; a device without a key
    works beside them (MD5 false);
 2. a device whose key is not the backend's never establishes and the
    agent logs why (the kernel keeps dropping its SYNs although a key is
    installed), without the key;
 3. a changed key: the registry changes (SIGHUP), the agent replaces the
    key (the running session stays up), the device changes its key too and
    its new session establishes;
 4. removals: a key cleared in the registry and a device removed from it
    take their keys off the listening sockets (MD5Keys gauge, log lines).
Keys on demand (kbgp-ingest --md5-push=false; capture on `lo`):
 5. BIRD and FRR devices establish within a few seconds: the agent's SYN
    capture saw each, it asked the backend and installed the key;
 6. a signing device the backend does not know is deny-listed (BLOCK_IP)
    and never establishes;
 7. 200 MD5 devices (BIRD processes with 16 sessions each) come up at once.
Secrets:
 8. none of the test's keys appears in any log, any process's argv, any
    status API answer (/hc, /admin/status, /admin/sessions[/<ip>],
    /metrics), or the memory of the listener and admin workers.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import re
import resource
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.bird import DeviceFleet, protocol_name, scale_addresses, scale_asn  # noqa: E402
from kbgptest.capture import SynWatcher  # noqa: E402
from kbgptest.net import http_get  # noqa: E402
from kbgptest import sanitizers  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import COLLECTOR_ASN, Topology  # noqa: E402

MD5_ON = "--enable-md5-support=true"
BIRD_DEV, BIRD_ASN = "127.0.0.3", 65003    # pushed key, BIRD
FRR_DEV, FRR_ASN = "127.0.0.4", 65004      # pushed key, FRR
PLAIN_DEV, PLAIN_ASN = "127.0.0.5", 65005  # no key
WRONG_DEV, WRONG_ASN = "127.0.0.6", 65006  # its key is not the backend's
OD_BIRD, OD_BIRD_ASN = "127.0.0.7", 65007  # key on demand, BIRD
OD_FRR, OD_FRR_ASN = "127.0.0.8", 65008    # key on demand, FRR
UNKNOWN, UNKNOWN_ASN = "127.0.0.9", 65009  # signs, not in the registry
FLEET = 200
KEY_PREFIX = "kbgpmd5"
ESTABLISHED_TEXT = "BGP session established"  # BIRD's trace line


def raise_fd_limit(need):
    """The collector BIRD and kbgp-ingest hold a socket per session; the
    children inherit the runner's limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise kbgptest.SkipTest("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def new_key():
    return KEY_PREFIX + os.urandom(10).hex()


def counters(agent):
    return agent.status()["Counters"]


def accepted(agent, ip, since=0, md5=None):
    """The agent's "accepted device connection" lines for `ip`."""
    lines = agent.log.find("accepted device connection", since=since)
    out = [l for l in lines if '"peer-addr":"%s:' % ip in l]
    if md5 is not None:
        out = [l for l in out if '"md5":"%s"' % ("yes" if md5 else "no") in l]
    return out


def logged(agent, text, ip, since=0):
    """Lines with `text` whose peer-addr is `ip` (with or without a port)."""
    return [l for l in agent.log.find(text, since=since)
            if re.search(r'"peer-addr":"%s(:\d+)?"' % re.escape(ip), l)]


def never_established(ctx, device, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check(device.session_state() != "Established",
                  "%s reached Established (its key is wrong / it is unknown)" % device.ip)
        time.sleep(0.25)
    with open(ctx.log_path(device.name)) as f:
        ctx.check(ESTABLISHED_TEXT not in f.read(), "%s's BIRD log says it was established" % device.ip)


def pushed_keys(ctx, keys):
    """Parts 1-4; returns the agent."""
    routes = make_routes(50, 5)
    topo = Topology(ctx)
    topo.start_collector([(BIRD_DEV, BIRD_ASN), (FRR_DEV, FRR_ASN), (PLAIN_DEV, PLAIN_ASN),
                          (WRONG_DEV, WRONG_ASN)])
    registry = [{"device_ip": BIRD_DEV, "md5_key": keys["bird"]},
                {"device_ip": FRR_DEV, "md5_key": keys["frr"]},
                PLAIN_DEV,
                {"device_ip": WRONG_DEV, "md5_key": keys["wrong-backend"]}]
    ingest = topo.start_ingest(registry)
    agent = topo.start_agent(extra_args=[MD5_ON])
    ctx.wait_until(lambda: counters(agent)["MD5Keys"] == 3, 20,
                   "the agent to hold the 3 keys kbgp-ingest pushes", describe=lambda: counters(agent))
    ctx.step("the agent installed the 3 pushed keys before any device connected")
    watcher = SynWatcher([agent.listen_port]).start()
    try:
        # 1. pushed keys: first SYN
        bird = topo.start_device("bird", BIRD_DEV, BIRD_ASN, routes, password=keys["bird"])
        frr = topo.start_device("frr", FRR_DEV, FRR_ASN, routes, password=keys["frr"])
        plain = topo.start_device("bird", PLAIN_DEV, PLAIN_ASN, routes)
        for dev in (bird, frr, plain):
            topo.wait_established(dev, timeout=30)
            topo.wait_routes(dev, routes, timeout=30)
        for dev in (bird, frr):
            signed = watcher.from_source(dev.ip, md5=True)
            ctx.check(len(signed) == 1, "%s (%s) sent %d signed SYNs before its session came up, want "
                      "exactly 1 (the pushed key lets the first one in)" % (dev.ip, dev.kind, len(signed)))
            ctx.check(agent.session(dev.ip).get("MD5") is True,
                      "/admin/sessions/%s does not say MD5 true" % dev.ip)
            ctx.check(accepted(agent, dev.ip, md5=True), "no accept line with md5=yes for %s" % dev.ip)
        ctx.check(not watcher.from_source(PLAIN_DEV, md5=True), "the plain device sent signed SYNs")
        ctx.check(agent.session(PLAIN_DEV).get("MD5") is False,
                  "/admin/sessions/%s does not say MD5 false" % PLAIN_DEV)
        c = counters(agent)
        ctx.check(c["MD5Lookups"] == 0, "the agent looked up keys although all were pushed: %s" % c)
        ctx.step("BIRD %s and FRR %s established on their first signed SYN (MD5 true), the plain "
                 "device %s beside them (MD5 false); no key lookup" % (BIRD_DEV, FRR_DEV, PLAIN_DEV))

        # 2. a key that is not the backend's
        wrong = topo.start_device("bird", WRONG_DEV, WRONG_ASN, routes, password=keys["wrong-device"])
        why = ctx.wait_until(lambda: logged(agent, "keeps dropping the device's SYNs", WRONG_DEV), 25,
                             "the agent to log why %s cannot connect" % WRONG_DEV,
                             describe=lambda: "state %s, counters %s" % (wrong.session_state(), counters(agent)))
        ctx.step("the agent says: %s" % why[0].strip())
        never_established(ctx, wrong, 2)
        c = counters(agent)
        ctx.check(c["KernelTCPMD5Failure"] > 0, "KernelTCPMD5Failure is 0: %s" % c)
        ctx.check(not accepted(agent, WRONG_DEV), "the agent accepted a connection from %s" % WRONG_DEV)
        ctx.step("%s (wrong key) never established; kernel TCPMD5Failure %d" % (WRONG_DEV, c["KernelTCPMD5Failure"]))

        # 3. a changed key
        keys["bird-new"] = new_key()
        mark = agent.log.mark()
        registry[0]["md5_key"] = keys["bird-new"]
        ingest.write_registry(registry, "127.0.0.2:%d" % topo.collector.port)
        ingest.reload()
        ctx.wait_until(lambda: logged(agent, "TCP-MD5 key replaced", BIRD_DEV, since=mark), 15,
                       "the agent to replace the key of %s" % BIRD_DEV)
        ctx.check(bird.established(), "%s's running session went down when its key changed at the agent"
                  % BIRD_DEV)
        ctx.step("the backend changed the key of %s; the agent replaced it, the session stayed up" % BIRD_DEV)
        bird.set_password(keys["bird-new"])
        ctx.wait_until(lambda: accepted(agent, BIRD_DEV, since=mark, md5=True), 20,
                       "a new MD5 session from %s with its new key" % BIRD_DEV,
                       describe=lambda: bird.session_state())
        topo.wait_established(bird, timeout=30)
        topo.wait_routes(bird, routes, timeout=30)
        ctx.step("%s changed its key too: a new session with the new key is up" % BIRD_DEV)

        # 4. removals
        mark = agent.log.mark()
        registry[1]["md5_key"] = ""   # FRR: key cleared
        del registry[3]               # the wrong-key device leaves the registry
        ingest.write_registry(registry, "127.0.0.2:%d" % topo.collector.port)
        ingest.reload()
        for ip in (FRR_DEV, WRONG_DEV):
            ctx.wait_until(lambda ip=ip: logged(agent, "TCP-MD5 key removed", ip, since=mark), 15,
                           "the agent to remove the key of %s" % ip)
        ctx.wait_until(lambda: counters(agent)["MD5Keys"] == 1, 5, "MD5Keys to drop to 1",
                       describe=lambda: counters(agent))
        ctx.check(frr.established(), "the FRR session went down when its key was removed from the "
                                     "listening sockets")
        wrong.stop()
        ctx.step("a cleared key (%s) and a removed device (%s) took their keys off the listening sockets; "
                 "the established FRR session stayed up" % (FRR_DEV, WRONG_DEV))
    finally:
        watcher.stop()
    return agent


def keys_on_demand(ctx, keys):
    """Parts 5-7; returns the agent."""
    raise_fd_limit(4 * FLEET + 1024)
    fleet_ips = scale_addresses(FLEET, block=13)
    fleet_sessions = [(ip, scale_asn(i)) for i, ip in enumerate(fleet_ips)]
    for i, ip in enumerate(fleet_ips):
        keys["fleet-%d" % i] = new_key()
    fleet_keys = [keys["fleet-%d" % i] for i in range(FLEET)]
    routes = make_routes(20, 0)
    topo = Topology(ctx, tag="od_")
    topo.start_collector([(OD_BIRD, OD_BIRD_ASN), (OD_FRR, OD_FRR_ASN)] + fleet_sessions)
    registry = [{"device_ip": OD_BIRD, "md5_key": keys["od-bird"]},
                {"device_ip": OD_FRR, "md5_key": keys["od-frr"]}]
    registry += [{"device_ip": ip, "device_id": 100000 + i, "device_name": "r%d" % i,
                  "md5_key": fleet_keys[i]} for i, ip in enumerate(fleet_ips)]
    topo.start_ingest(registry, name="od_kbgp-ingest", extra_args=["--md5-push=false"])
    agent = topo.start_agent(name="od_kbgp", listeners=16,
                             extra_args=[MD5_ON, "--md5-listen-interface", "lo"])
    ctx.wait_until(agent.control_connected, 15, "the Control stream to connect")
    ctx.check(counters(agent)["MD5Keys"] == 0, "keys were pushed although kbgp-ingest runs --md5-push=false")
    config = agent.status()["Config"]
    ctx.check(config.get("MD5Enabled") is True and config.get("MD5Interface") == "lo",
              "/admin/status Config says MD5Enabled %r, MD5Interface %r" % (
                  config.get("MD5Enabled"), config.get("MD5Interface")))
    watcher = SynWatcher([port for _, port in agent.endpoints()]).start()
    try:
        # 5. keys on demand
        for kind, ip, asn, key in (("bird", OD_BIRD, OD_BIRD_ASN, keys["od-bird"]),
                                   ("frr", OD_FRR, OD_FRR_ASN, keys["od-frr"])):
            t0 = time.monotonic()
            dev = topo.start_device(kind, ip, asn, routes, agent=agent, password=key)
            topo.wait_established(dev, timeout=20)
            took = time.monotonic() - t0
            ctx.check(took < 10, "%s (%s) took %.1f s to establish with a key on demand" % (ip, kind, took))
            saw = logged(agent, "signed SYN from a device without a key", ip)
            ctx.check(saw, "the agent's SYN capture did not log %s" % ip)
            ctx.check(logged(agent, "TCP-MD5 key installed", ip), "no key installed for %s" % ip)
            ctx.check(agent.session(ip).get("MD5") is True, "/admin/sessions/%s does not say MD5 true" % ip)
            signed = watcher.from_source(ip, md5=True)
            ctx.step("%s (%s) established %.1f s after it started, key on demand (%d signed SYNs); the agent: %s"
                     % (ip, kind, took, len(signed), saw[0].strip()[:160]))
            topo.wait_routes(dev, routes, timeout=30)
        c = counters(agent)
        ctx.check(c["MD5SynsSeen"] >= 2 and c["MD5Lookups"] >= 2 and c["MD5KeysInstalled"] >= 2,
                  "counters after two lookups: %s" % c)
        status, metrics = agent.metrics()
        ctx.check(status == 200 and re.search(r"^kbgp_md5_lookups_total [1-9]", metrics, re.M) and
                  'kbgp_kernel_tcp_md5_drops_total{reason="not_found"}' in metrics,
                  "/metrics lacks the MD5 counters")

        # 6. a signing device the backend does not know
        keys["unknown"] = new_key()
        unknown = topo.start_device("bird", UNKNOWN, UNKNOWN_ASN, routes, agent=agent, password=keys["unknown"])
        ctx.wait_until(lambda: agent.log.find("Deny-listed an INVALID / UNKNOWN device", device_ip=UNKNOWN), 15,
                       "the agent to deny-list %s after its key lookup" % UNKNOWN)
        never_established(ctx, unknown, 2)
        unknown.stop()
        ctx.step("%s (signs, unknown to the backend) was deny-listed and never established" % UNKNOWN)

        # 7. 200 MD5 devices at once
        fleet = DeviceFleet(ctx, "md5fleet", fleet_sessions, ["10.99.0.0/24"], agent.endpoints(),
                            COLLECTOR_ASN, enabled=0, passwords=fleet_keys).start()
        t0 = time.monotonic()
        fleet.enable_all()
        names = [protocol_name(ip) for ip in fleet_ips]

        def all_up():
            states = topo.collector.protocol_states()
            return sum(1 for n in names if states.get(n) == "Established") == FLEET and \
                fleet.established_count() == FLEET
        ctx.wait_until(all_up, 90, "all %d MD5 devices Established at both ends" % FLEET, interval=0.5,
                       describe=lambda: "%d up at the devices; agent counters %s" % (
                           fleet.established_count(), counters(agent)))
        sessions = agent.sessions()["Sessions"]
        md5_fleet = [s for s in sessions if s.get("MD5") is True and s["Peer"].startswith("127.13.")]
        ctx.check(len(md5_fleet) == FLEET, "%d fleet sessions with MD5 true at the agent, want %d"
                  % (len(md5_fleet), FLEET))
        ctx.step("%d MD5 devices established %.1f s after they were enabled; agent counters %s" % (
            FLEET, time.monotonic() - t0,
            {k: v for k, v in counters(agent).items() if k.startswith(("MD5", "Kernel"))}))
    finally:
        watcher.stop()
    return agent


def worker_memory_has(pid, keys):
    """The keys found in a process's readable memory (/proc/<pid>/mem)."""
    found = set()
    wanted = {k.encode() for k in keys}
    prefix = KEY_PREFIX.encode()
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if not parts[1].startswith("r") or (len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]")):
                continue
            if sanitizers.is_shadow(lo, hi):
                continue  # a sanitizer build's shadow: terabytes, never data
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            at = data.find(prefix)
            while at >= 0:
                chunk = data[at:at + len(prefix) + 20]
                if chunk in wanted:
                    found.add(chunk.decode())
                at = data.find(prefix, at + 1)
    return found


def no_secrets(ctx, agents, keys):
    """Part 8."""
    secrets = sorted(set(keys.values()))
    for f in sorted(os.listdir(ctx.dir)):
        if f.endswith(".log"):
            with open(ctx.path(f), "rb") as fh:
                text = fh.read()
            leaked = [k for k in secrets if k.encode() in text]
            ctx.check(not leaked, "%d TCP-MD5 key(s) appear in %s" % (len(leaked), f))
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                argv = fh.read()
        except OSError:
            continue
        ctx.check(KEY_PREFIX.encode() not in argv, "a TCP-MD5 key is in the argv of pid %s" % pid)
    for agent in agents:
        paths = ["/hc", "/admin/status", "/admin/sessions", "/metrics"]
        paths += ["/admin/sessions/%s" % ip for ip in (BIRD_DEV, FRR_DEV, PLAIN_DEV, OD_BIRD, OD_FRR)]
        for path in paths:
            status, body = http_get(agent.url(path))
            ctx.check(KEY_PREFIX not in body, "GET %s on %s shows a TCP-MD5 key" % (path, agent.name))
        for p in agent.processes():
            if p["comm"] not in ("kbgp-listener", "kbgp-admin"):
                continue
            try:
                found = worker_memory_has(p["pid"], secrets)
            except OSError as e:
                ctx.step("note: cannot read the memory of %s (pid %d): %s" % (p["comm"], p["pid"], e))
                continue
            ctx.check(not found, "%d TCP-MD5 key(s) in the memory of %s (pid %d)"
                      % (len(found), p["comm"], p["pid"]))
    ctx.step("none of the %d keys is in a log, an argv, a status API answer, or the memory of the "
             "listener and admin workers" % len(secrets))


def test(ctx):
    keys = {"bird": new_key(), "frr": new_key(), "wrong-backend": new_key(), "wrong-device": new_key(),
            "od-bird": new_key(), "od-frr": new_key()}
    agents = [pushed_keys(ctx, keys), keys_on_demand(ctx, keys)]
    no_secrets(ctx, agents, keys)


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_md5", __doc__, tools=("bird", "birdc", "openssl", "ps", "vtysh",
                                                              "/usr/lib/frr/bgpd")))
