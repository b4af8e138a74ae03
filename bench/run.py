#!/usr/bin/python3
"""pyimapd beside Dovecot and GNU mailutils: one command, medians, ratios, JSON.

    sudo python3 bench/run.py [--sizes 1000,10000] [--repeat 3] [--json out.json]

See bench/README.md for what is measured and how each server is started.
Nothing is installed unless --install is given; servers that are missing are
skipped with the apt-get line that brings them.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import corpus
import report
import scenarios
from client import BenchError
from servers import INSTALL_HINT, PYTHON, SERVERS, Identity, PyImapd

DEFAULT_WORKDIR = "/var/tmp/pyimapd-bench"


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000",
                        help="mailbox sizes in messages, comma-separated (default 1000,10000; "
                             "100000 is the issue's target size)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every flow (default 3)")
    parser.add_argument("--servers", default="pyimapd,dovecot,mailutils",
                        help="which servers, comma-separated (default all three)")
    parser.add_argument("--greetings", type=int, default=20,
                        help="start→greeting samples per server and protocol per repeat")
    parser.add_argument("--protocols", default="imap,pop3", help="imap,pop3 (default both)")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurements")
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR,
                        help="scratch space: generated mailboxes (kept for reuse) and the "
                             "servers' copies (default %s)" % DEFAULT_WORKDIR)
    parser.add_argument("--json", help="write all samples, medians and errors here "
                                       "(default WORKDIR/results.json)")
    parser.add_argument("--markdown", help="also write the tables here")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds to wait for any one reply before giving up (default 900)")
    parser.add_argument("--install", action="store_true",
                        help="first run: " + INSTALL_HINT)
    options = parser.parse_args(argv)
    options.sizes = [int(size) for size in options.sizes.split(",") if size]
    options.servers = [name for name in options.servers.split(",") if name]
    options.protocols = [name for name in options.protocols.split(",") if name]
    unknown = set(options.servers) - set(SERVERS)
    if unknown:
        parser.error("unknown servers: %s (known: %s)" % (", ".join(unknown), ", ".join(SERVERS)))
    options.workdir = Path(options.workdir)
    options.json = Path(options.json) if options.json else options.workdir / "results.json"
    return options


def progress(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


# -- the machine ------------------------------------------------------------------


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    python = subprocess.run([PYTHON, "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": memory,
            "load_average_at_start": os.getloadavg(),
            "os": "Debian %s" % _read("/etc/debian_version").strip(),
            "kernel": platform.release(), "python": python + " (%s)" % PYTHON}


def describe(info):
    return "%d cores (%s), %d GB RAM, %s, kernel %s, %s" % (
        info["cores"], info["cpu"], round(info["memory_mb"] / 1024), info["os"], info["kernel"],
        info["python"])


# -- running ------------------------------------------------------------------------


def install_servers():
    subprocess.run(["apt-get", "install", "-y", "dovecot-imapd", "dovecot-pop3d",
                    "mailutils-imap4d", "mailutils-pop3d"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def available_servers(options, identity):
    servers = []
    for name in options.servers:
        cls = SERVERS[name]
        missing = cls.missing()
        if missing:
            progress("skipping %s: %s missing; install with: %s"
                     % (cls.label, ", ".join(missing), INSTALL_HINT))
            continue
        server = cls(options.workdir / name, identity)
        server.setup()
        servers.append(server)
    return servers


def mailbox(options, count):
    """The generated spool file for count messages, made once and kept in the workdir."""
    path = options.workdir / "corpus" / ("inbox-%d-seed%d-v%d.mbox"
                                         % (count, corpus.DEFAULT_SEED, corpus.FORMAT_VERSION))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        progress("generating %s" % path)
        partial = path.with_suffix(".partial")
        corpus.write_mbox(partial, count)
        partial.rename(path)
    return path


class Results:
    def __init__(self):
        self.samples = {}   # group -> server -> metric -> [values]
        self.errors = []
        self.warnings = []

    def recorder(self, group, server):
        bucket = self.samples.setdefault(str(group), {}).setdefault(server, {})
        return lambda metric, value: bucket.setdefault(metric, []).append(value)

    def warner(self, where, repeat):
        """warn(text) for one flow; the same warning from several repeats is listed once."""
        def warn(text):
            entry = "%s: %s" % (where, text)
            progress("warning: %s (repeat %d)" % (entry, repeat + 1))
            for known in self.warnings:
                if known["warning"] == entry:
                    known["repeats"].append(repeat + 1)
                    return
            self.warnings.append({"warning": entry, "repeats": [repeat + 1]})
        return warn

    def medians(self, group):
        return {server: {metric: report.median(values) for metric, values in metrics.items()}
                for server, metrics in self.samples.get(str(group), {}).items()}


def run_startup(options, servers, identity, results, repeat):
    """Rounds of one start of everything, so that all share the machine's ups and downs;
    the first round only warms the page cache and is not counted."""
    probes = []
    for key, argv in (("python_isolated", [PYTHON, "-I", "-c", "pass"]),
                      ("python", [PYTHON, "-c", "pass"])):
        probes.append(("bare %s" % key, results.recorder("startup", "baseline"), key,
                       lambda argv=argv: scenarios.bare_start_time(
                           argv, identity.inetd_uid, identity.inetd_gid)))
    for server in servers:
        for protocol in options.protocols:
            where = "start-up %s %s" % (server.label, protocol)
            warn = results.warner(where, repeat)
            probes.append((where, results.recorder("startup", server.name), protocol,
                           lambda server=server, protocol=protocol, warn=warn:
                           scenarios.greeting_time(server, protocol, options, warn)))
    waiting = start_wait_mode(options, servers, results, probes)
    try:
        sample_rounds(options, probes, results, repeat)
    finally:
        for process in waiting:
            if not process.stop():
                results.errors.append({"where": "start-up pyimapd wait mode", "repeat": repeat + 1,
                                       "error": "the wait-mode server exited before the end"})


def start_wait_mode(options, servers, results, probes):
    """pyimapd once more in wait mode (xinetd `wait = yes`): started once per protocol, then
    probed from connect() to greeting, since it forks a ready session per connection."""
    processes = []
    for server in servers:
        if server.name != "pyimapd":
            continue
        for protocol in options.protocols:
            stderr_path = options.workdir / ("pyimapd-wait-%s.stderr" % protocol)
            process = server.start_wait_mode(protocol, stderr_path)
            processes.append(process)
            probes.append(("start-up pyimapd wait mode %s" % protocol,
                           results.recorder("startup", "pyimapd-wait"), protocol,
                           lambda address=process.address, protocol=protocol:
                           scenarios.wait_mode_greeting_time(address, protocol, options.timeout)))
    return processes


def sample_rounds(options, probes, results, repeat):
    """Run every probe once per round; the first round is not recorded."""
    failed = set()
    for round_number in range(options.greetings + 1):
        for where, record, metric, probe in probes:
            if where in failed:
                continue
            try:
                value = probe()
            except BenchError as error:
                failed.add(where)
                results.errors.append({"where": where, "repeat": repeat + 1, "error": str(error)})
                progress("error: %s: %s" % (where, error))
                continue
            if round_number:
                record(metric, value)


def run_flows(options, servers, results, size, source, repeat):
    # Rotate the order so that no server always runs right after the copy or another server.
    shift = repeat % len(servers)
    for server in servers[shift:] + servers[:shift]:
        for protocol in options.protocols:
            where = "%s messages, %s %s" % ("{:,}".format(size), server.label, protocol.upper())
            flow_class = scenarios.ImapFlow if protocol == "imap" else scenarios.Pop3Flow
            flow = flow_class(server, options, results.recorder(size, server.name),
                              results.warner(where, repeat))
            started = time.perf_counter()
            try:
                flow.run(source, size)
            except BenchError as error:
                results.errors.append({"where": where, "repeat": repeat + 1, "error": str(error)})
                progress("error: %s: %s" % (where, error))
            except Exception:
                results.errors.append({"where": where, "repeat": repeat + 1,
                                       "error": traceback.format_exc()})
                progress("error: %s: %s" % (where, traceback.format_exc()))
            progress("%s: %.1f s" % (where, time.perf_counter() - started))


def render(options, servers, results, info, versions, date):
    columns = [(server.name, server.label) for server in servers]
    parts = ["Benchmarks run %s on %s." % (date, describe(info)),
             "Servers: %s. Medians of %d runs; mailboxes from bench/corpus.py."
             % ("; ".join(versions.values()), options.repeat)]
    if not options.no_startup:
        startup = results.medians("startup")
        medians = {name: dict(values) for name, values in startup.items()}
        medians.setdefault("baseline", {})
        startup_columns = list(columns)
        if "pyimapd-wait" in medians:
            startup_columns.insert(1, ("pyimapd-wait", "pyimapd, wait mode"))
        parts.append(report.startup_table(medians, startup_columns))
    smallest = min(options.sizes) if options.sizes else None
    for size in options.sizes:
        medians = results.medians(size)
        first = results.medians(smallest).get("pyimapd", {}).get("imap_store_one")
        store_base = (smallest, first) if first else None
        parts.append(report.size_table(size, medians, columns, store_base))
    if results.errors:
        parts.append("Errors:\n\n" + "\n".join(
            "- %s (run %d): %s" % (e["where"], e["repeat"], e["error"].replace("\n", " | "))
            for e in results.errors))
    if results.warnings:
        parts.append("Warnings:\n\n" + "\n".join(
            "- %s (run %s)" % (w["warning"], ", ".join(map(str, w["repeats"])))
            for w in results.warnings))
    return "\n\n".join(parts) + "\n"


def main(argv=None):
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    if options.install:
        install_servers()
    identity = Identity()
    options.workdir.mkdir(parents=True, exist_ok=True)
    options.workdir.chmod(0o755)
    servers = available_servers(options, identity)
    if not servers:
        raise SystemExit("no server to measure")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    versions = {server.name: server.version() for server in servers}
    progress("machine: %s" % describe(info))
    if info["load_average_at_start"][0] > 0.5:
        progress("warning: load average %.2f: something else is running, timings will be noisy"
                 % info["load_average_at_start"][0])
    results = Results()
    started = time.perf_counter()
    if not options.no_startup:
        for repeat in range(options.repeat):
            progress("start-up, repeat %d/%d" % (repeat + 1, options.repeat))
            run_startup(options, servers, identity, results, repeat)
    for size in options.sizes:
        source = mailbox(options, size)
        for repeat in range(options.repeat):
            PyImapd.compile()  # again, in case the server's source changed meanwhile
            run_flows(options, servers, results, size, source, repeat)
    for server in servers:
        shutil.rmtree(server.root, ignore_errors=True)
    text = render(options, servers, results, info, versions, date)
    print(text)
    document = {
        "date": date, "machine": info, "versions": versions,
        "options": {"sizes": options.sizes, "repeat": options.repeat,
                    "greetings": options.greetings, "protocols": options.protocols,
                    "corpus_seed": corpus.DEFAULT_SEED, "corpus_version": corpus.FORMAT_VERSION},
        "metrics": {key: {"label": label, "unit": unit, "higher_is_better": higher, "target": target}
                    for key, (label, unit, higher, target, _) in report.METRICS.items()},
        "medians": {group: results.medians(group) for group in results.samples},
        "samples": results.samples, "errors": results.errors, "warnings": results.warnings,
        "seconds": time.perf_counter() - started,
    }
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    if options.markdown:
        Path(options.markdown).write_text(text)
    progress("done in %.0f s; JSON in %s" % (time.perf_counter() - started, options.json))
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
