"""The metrics, their targets from issue 8, and the Markdown table of medians."""

import statistics

# key: (label, unit, higher is better, target text, target test on the pyimapd/Dovecot ratio)
# Targets hold at 100,000 messages; the table marks them only there.
METRICS = {
    "imap_login": ("IMAP LOGIN (others preauth)", "ms", False, "", None),
    "imap_select_first": ("IMAP SELECT, first open", "ms", False, "", None),
    "imap_start_select_first": ("IMAP start→SELECT done, first open", "ms", False, "≤ 2×",
                                lambda r: r <= 2.0),
    "imap_select_reopen": ("IMAP SELECT, reopen", "ms", False, "", None),
    "imap_start_select_reopen": ("IMAP start→SELECT done, reopen", "ms", False, "≤ 1×",
                                 lambda r: r <= 1.0),
    "imap_fetch_envelope": ("FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE), first",
                            "ms", False, "≤ 2×", lambda r: r <= 2.0),
    "imap_fetch_envelope_again": ("FETCH 1:* (… ENVELOPE), next session", "ms", False, "≤ 2×",
                                  lambda r: r <= 2.0),
    "imap_search_body": ("UID SEARCH BODY <rare word>", "ms", False, "≤ 1.5×", lambda r: r <= 1.5),
    "imap_body_mbps": ("FETCH BODY.PEEK[] of 500 messages", "MB/s", True, "≥ 0.5×",
                       lambda r: r >= 0.5),
    "imap_store_one": ("STORE +FLAGS (\\Flagged) on message 1", "ms", False, "constant", None),
    "imap_store_expunge": ("STORE \\Deleted every 10th + EXPUNGE", "ms", False, "≤ 2×",
                           lambda r: r <= 2.0),
    "imap_logout_expunge": ("LOGOUT after that EXPUNGE (to close)", "ms", False, "", None),
    "imap_rss": ("IMAP peak RSS (VmHWM, mapped file pages included)", "MB", False,
                 "< 100 MB", None),
    "imap_anon": ("IMAP peak private memory (RssAnon, sampled)", "MB", False, "", None),
    "pop3_login": ("POP3 USER+PASS (Dovecot preauth)", "ms", False, "", None),
    "pop3_start_stat_first": ("POP3 start→STAT done, first open", "ms", False, "≤ 1×",
                              lambda r: r <= 1.0),
    "pop3_start_stat_reopen": ("POP3 start→STAT done, reopen", "ms", False, "≤ 1×",
                               lambda r: r <= 1.0),
    "pop3_uidl": ("POP3 UIDL", "ms", False, "≤ 1×", lambda r: r <= 1.0),
    "pop3_list": ("POP3 LIST", "ms", False, "", None),
    "pop3_retr_mbps": ("POP3 RETR of every message", "MB/s", True, "≥ 0.5×", lambda r: r >= 0.5),
    "pop3_dele": ("POP3 DELE every 10th (pipelined)", "ms", False, "", None),
    "pop3_quit": ("POP3 QUIT (applies DELE and \\Seen)", "ms", False, "", None),
    "pop3_rss": ("POP3 peak RSS (VmHWM, mapped file pages included)", "MB", False,
                 "< 100 MB", None),
    "pop3_anon": ("POP3 peak private memory (RssAnon, sampled)", "MB", False, "", None),
}
STARTUP_ROWS = (
    ("python3 -I -c pass", "python_isolated"),
    ("python3 -c pass", "python"),
)
TARGET_SIZE = 100_000
RSS_LIMIT_MB = 100


def median(values):
    return statistics.median(values) if values else None


def fmt(value, unit=""):
    if value is None:
        return "—"
    if unit == "MB/s" or unit == "MB":
        return "%.1f" % value
    if value < 10:
        return "%.2f" % value
    if value < 100:
        return "%.1f" % value
    return "%.0f" % value


def ratio_text(ratio):
    return "—" if ratio is None else "%.2f×" % ratio


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def _target_mark(key, size, py, ratio, smallest):
    label, unit, _, target, test = METRICS[key]
    if not target:
        return ""
    if key.endswith("_rss"):
        if py is None:
            return target
        return "%s %s" % (target, "✓" if py < RSS_LIMIT_MB else "✗")
    if key == "imap_store_one":
        if smallest is None or py is None or size == smallest[0]:
            return target
        grown = py / smallest[1]
        return "%s: %.1f× its %s-message time %s" % (target, grown, "{:,}".format(smallest[0]),
                                                    "✓" if grown <= 2 else "✗")
    if size != TARGET_SIZE or ratio is None or test is None:
        return target
    return "%s %s" % (target, "✓" if test(ratio) else "✗")


def size_table(size, medians, servers, smallest_store=None):
    """Markdown rows for one mailbox size. medians[server][metric] -> value."""
    names = [name for name, _ in servers]
    header = "| %s messages | %s | pyimapd/Dovecot | target at 100k |" % (
        "{:,}".format(size), " | ".join(label for _, label in servers))
    lines = [header, "|---|" + "---:|" * len(servers) + "---:|---|"]
    for key, (label, unit, _, _, _) in METRICS.items():
        values = [medians.get(name, {}).get(key) for name in names]
        if all(v is None for v in values):
            continue
        py, dove = medians.get("pyimapd", {}).get(key), medians.get("dovecot", {}).get(key)
        ratio = _ratio(py, dove)
        lines.append("| %s (%s) | %s | %s | %s |" % (
            label, unit, " | ".join(fmt(v, unit) for v in values), ratio_text(ratio),
            _target_mark(key, size, py, ratio, smallest_store)))
    return "\n".join(lines)


def startup_table(startup, servers):
    """Markdown rows for start→greeting. startup[name][protocol] -> median ms."""
    base = startup.get("baseline", {})
    isolated = base.get("python_isolated")
    dove = startup.get("dovecot", {})
    lines = ["| start → greeting (ms) | IMAP | POP3 | IMAP / python3 -I | IMAP / Dovecot | "
             "POP3 / Dovecot |", "|---|---:|---:|---:|---:|---:|"]
    for label, key in STARTUP_ROWS:
        if key in base:
            lines.append("| `/usr/bin/%s` (start to exit) | %s | | | | |" % (label, fmt(base[key])))
    for name, label in servers:
        row = startup.get(name, {})
        imap, pop3 = row.get("imap"), row.get("pop3")
        vs_python = _ratio(imap, isolated)
        mark = wait_mark = ""
        if name == "pyimapd" and vs_python is not None:
            mark = " (target ≤ 1.5× %s)" % ("✓" if vs_python <= 1.5 else "✗")
        vs_dovecot = _ratio(imap, dove.get("imap"))
        if name == "pyimapd-wait" and vs_dovecot is not None:
            wait_mark = " (target ≤ 2× %s)" % ("✓" if vs_dovecot <= 2.0 else "✗")
        lines.append("| %s | %s | %s | %s%s | %s%s | %s |" % (
            label, fmt(imap), fmt(pop3), ratio_text(vs_python), mark,
            ratio_text(vs_dovecot), wait_mark, ratio_text(_ratio(pop3, dove.get("pop3")))))
    inetd, waiting = startup.get("pyimapd", {}), startup.get("pyimapd-wait", {})
    if inetd and waiting:
        lines.append("\nWait mode is timed from connect() to the greeting of the running server (a forked "
                     "session); the others from starting the process. Wait mode / inetd mode: IMAP %s, "
                     "POP3 %s." % (ratio_text(_ratio(waiting.get("imap"), inetd.get("imap"))),
                                   ratio_text(_ratio(waiting.get("pop3"), inetd.get("pop3")))))
    return "\n".join(lines)
