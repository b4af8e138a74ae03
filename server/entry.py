"""What both servers' entry points share: options, configuration, syslog, crash replies.

inetd starts `ipop3d` or `imapd` once per connection; each calls serve()
with its own session class, syslog ident and implicit-TLS port.
"""

import _signal  # not `signal`: its enums cost start-up time before the greeting
import os
import sys

from server.transport import HandshakeFailed, Transport


def parse_arguments(argv, program):
    """--config FILE and --tls (implicit TLS, as for pop3s and imaps)."""
    options = {"config": None, "tls": False}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--tls":
            options["tls"] = True
        elif arg == "--config" and args:
            options["config"] = args.pop(0)
        elif arg.startswith("--config="):
            options["config"] = arg.split("=", 1)[1]
        else:
            raise SystemExit("usage: %s [--config FILE] [--tls]" % program)
    return options


def serve(program, make_session, tls_port, config_error_reply, crash_reply, argv=None):
    """Run one connection on fd 0/1: load config, open syslog, maybe TLS, then the session.

    `make_session(transport, config, log, hostname)` builds the protocol
    session; an unexpected exception is logged with its traceback and the
    client gets `crash_reply`, never the exception text.
    """
    from server.config import ConfigError, load
    from server.log import Log

    silence_stderr_on_socket()
    options = parse_arguments(sys.argv[1:] if argv is None else argv, program)
    _signal.signal(_signal.SIGUSR2, _signal.SIG_IGN)  # UW's kiss of death: never honoured here
    if os.umask(0o022) == 0:
        os.umask(0o022)
    log = Log(program)
    transport = Transport(0, 1)
    try:
        config = load(options["config"])
    except ConfigError as error:
        log("err", "configuration error: %s" % error)
        transport.write(config_error_reply)
        return 1
    if config.syslog_facility != "mail":
        log = Log(program, config.syslog_facility)
    for warning in config.warnings:
        log("warning", warning)
    transport.handshake_timeout = config.login_timeout
    session = make_session(transport, config, log, hostname())
    try:
        if options["tls"] or transport.local_port == tls_port:
            if not start_implicit_tls(transport, session, log):
                return 1
        session.run()
    except HandshakeFailed as error:
        # The client's doing (an old protocol, no common cipher, a port scan), not ours.
        log("notice", "TLS handshake failed host=%s: %s" % (transport.peer_text(), error))
    except Exception:
        report_crash(log, transport, crash_reply)
        return 1
    return 0


def start_implicit_tls(transport, session, log):
    """TLS before the greeting (imaps, pop3s); False, logged, when no certificate can be loaded.

    The client then gets no reply at all: it expects a TLS handshake, and
    plaintext would only be garbage to it.
    """
    try:
        context = session.make_tls_context()
    except (OSError, ValueError) as error:
        log("err", "TLS not available: cannot load ssl_cert_file/ssl_key_file: %s" % error)
        return False
    transport.start_tls(context)
    return True


def silence_stderr_on_socket():
    """inetd hands over the connection as fd 2 as well: nothing may reach the client there.

    UW's servers close stderr (servers.md §1); it is pointed at /dev/null
    instead so that fd 2 is never reused for a file. A stderr that is not a
    socket (a terminal, a test's log file) is kept.
    """
    import stat

    try:
        if not stat.S_ISSOCK(os.fstat(2).st_mode):
            return
    except OSError:
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)


def report_crash(log, transport, reply):
    """An unexpected error: traceback to syslog, a generic reply to the client."""
    import traceback

    log("err", "internal error: %s" % traceback.format_exc())
    try:
        transport.write(reply)
    except Exception:
        pass


def hostname():
    import _socket

    return _socket.gethostname() or "localhost"
