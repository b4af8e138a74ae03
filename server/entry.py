"""What both servers' entry points share: options, configuration, syslog, crash replies.

inetd starts `ipop3d` or `imapd` once per connection; each calls serve()
with its own session class, syslog ident and implicit-TLS port. Started
with a listening socket instead (wait mode), the process accepts the
connections itself and forks a child for each (server.acceptloop).
"""

import _signal  # not `signal`: its enums cost start-up time before the greeting
import os
import sys

from server.transport import HandshakeFailed, Transport

# sd_listen_fds(3): the first socket systemd passes sits at fd 3.
SD_LISTEN_FDS_START = 3


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
    """Serve the connection on fd 0/1 (inetd `nowait`), or accept connections (wait mode).

    `make_session(transport, config, log, hostname)` builds the protocol
    session; an unexpected exception is logged with its traceback and the
    client gets `crash_reply`, never the exception text. When the process was
    given a listening socket instead of a connection (xinetd `wait = yes`,
    systemd `Accept=no`), server.acceptloop forks a child per connection that
    runs serve_connection() just as an inetd-started process does.
    """
    silence_stderr_on_socket()
    options = parse_arguments(sys.argv[1:] if argv is None else argv, program)
    _signal.signal(_signal.SIGUSR2, _signal.SIG_IGN)  # UW's kiss of death: never honoured here
    if os.umask(0o022) == 0:
        os.umask(0o022)
    connection = Connection(program, make_session, tls_port, config_error_reply, crash_reply,
                            options)
    listening = inherited_listener()
    if listening is not None:
        from server.acceptloop import run

        return run(listening, connection)
    from server.config import load_or_error

    end_process(connection.serve(load_or_error(options["config"])))


def end_process(status):
    """Exit at once: the session is over, its mailbox closed and its replies written.

    What a normal interpreter exit would add is freeing every object one by
    one, 60 ms after a session on a 100,000-message mailbox; the kernel
    takes the whole address space back at once. (Forked wait-mode children
    end the same way.)
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(status)


class Connection:
    """What one connection needs from the entry point: the program's parts and the options."""

    def __init__(self, program, make_session, tls_port, config_error_reply, crash_reply, options):
        self.program, self.make_session, self.tls_port = program, make_session, tls_port
        self.config_error_reply, self.crash_reply = config_error_reply, crash_reply
        self.options = options

    def serve(self, config):
        """Run the session on fd 0/1 with `config` (a Config, or the ConfigError loading gave)."""
        from server.config import ConfigError
        from server.log import Log

        log = Log(self.program)
        transport = Transport(0, 1)
        if isinstance(config, ConfigError):
            log("err", "configuration error: %s" % config)
            transport.write(self.config_error_reply)
            return 1
        if config.syslog_facility != "mail":
            log = Log(self.program, config.syslog_facility)
        for warning in config.warnings:
            log("warning", warning)
        transport.handshake_timeout = config.login_timeout
        session = self.make_session(transport, config, log, hostname())
        try:
            if self.options["tls"] or transport.local_port == self.tls_port:
                if not start_implicit_tls(transport, session, log):
                    return 1
            session.run()
        except HandshakeFailed as error:
            # The client's doing (an old protocol, no common cipher, a port scan), not ours.
            log("notice", "TLS handshake failed host=%s: %s" % (transport.peer_text(), error))
        except Exception:
            report_crash(log, transport, self.crash_reply)
            return 1
        return 0


def inherited_listener():
    """The listening socket this process was started with, or None for a connection (inetd).

    xinetd `wait = yes` passes it as fd 0 (and 1); systemd `Accept=no` as fd 3,
    saying so in LISTEN_FDS and LISTEN_PID (sd_listen_fds(3)), or as fd 0 with
    StandardInput=socket. The caller owns the returned socket (a new descriptor).
    """
    # The C module probes: `socket` itself costs milliseconds of every inetd start.
    import _socket

    fd = 0
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS", "0") != "0":
        fd = SD_LISTEN_FDS_START
    try:
        sock = _socket.socket(fileno=os.dup(fd))
    except OSError:
        return None  # a pipe, a terminal, /dev/null: not a socket at all
    try:
        listening = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    if not listening:
        sock.close()
        return None
    import socket

    return socket.socket(fileno=sock.detach())


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
