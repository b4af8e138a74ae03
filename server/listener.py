"""A minimal inetd for hosts without one: accept TCP connections and start the server per connection.

Each accepted connection gets a child process with the socket on fd 0 and fd 1,
which then execs the server command, exactly as inetd/xinetd do for a `nowait`
stream service. The listener itself never reads or writes the connection.

Run it as `python -m server.listener --port 1110 -- /usr/bin/python3 ipop3d.py`.
It prints `listening on HOST:PORT` once it accepts connections (port 0 picks a
free port), and stops on SIGTERM or SIGINT, leaving running sessions to finish.
"""

import argparse
import errno
import os
import select
import signal
import socket
import sys

# Connections the kernel queues while sessions start (capped by net.core.somaxconn).
LISTEN_BACKLOG = 64
# Exit status of a child whose exec failed, as the shells use for "not found".
EXEC_FAILED_STATUS = 127
# Pause after accept() fails for lack of descriptors or memory, so the loop does not spin.
RESOURCE_RETRY_SECONDS = 1.0

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_WATCHED_SIGNALS = _STOP_SIGNALS + (signal.SIGCHLD,)


def open_listening_socket(host, port):
    """Bind and listen on (host, port), IPv4 or IPv6 by the form of host."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def format_address(sock):
    """Return the bound address as HOST:PORT, with brackets around an IPv6 host."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = "[%s]" % host
    return "%s:%d" % (host, port)


def exec_in_child(command, connection):
    """In a forked child: put the connection on fd 0 and fd 1, then exec command; never returns."""
    try:
        signal.set_wakeup_fd(-1)
        # Ignored and blocked signals survive exec; give the server inetd's defaults.
        for number in _WATCHED_SIGNALS + (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.dup2(connection.fileno(), 0)
        os.dup2(connection.fileno(), 1)
        connection.close()
        os.execv(command[0], command)
    except BaseException as error:  # the child must never return into the listener
        try:
            os.write(2, ("listener: cannot run %s: %s\n" % (command[0], error)).encode())
        finally:
            os._exit(EXEC_FAILED_STATUS)


def reap_children(children):
    """Collect every child that has exited, so that none stays a zombie."""
    while children:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)


class SignalPipe:
    """Turns SIGCHLD, SIGTERM and SIGINT into bytes on a pipe that select() can wait on."""

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.previous_wakeup_fd = signal.set_wakeup_fd(self.write_fd)
        self.previous_handlers = {}
        for number in _WATCHED_SIGNALS:
            self.previous_handlers[number] = signal.signal(number, self._note)
        # A parent may have blocked them (a blocked SIGCHLD would leave zombies).
        self.previous_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, _WATCHED_SIGNALS)

    @staticmethod
    def _note(number, frame):
        """Do nothing in Python: the C handler has already written the number to the pipe."""

    def received(self):
        """Return the set of signal numbers delivered since the last call."""
        numbers = set()
        while True:
            try:
                chunk = os.read(self.read_fd, 512)
            except BlockingIOError:
                return numbers
            if not chunk:
                return numbers
            numbers.update(chunk)

    def close(self):
        """Restore the previous signal handlers and close the pipe."""
        signal.pthread_sigmask(signal.SIG_SETMASK, self.previous_mask)
        signal.set_wakeup_fd(self.previous_wakeup_fd)
        for number, handler in self.previous_handlers.items():
            signal.signal(number, handler)
        os.close(self.read_fd)
        os.close(self.write_fd)


def _accept_and_start(listening, command, children):
    """Accept one pending connection and fork the server for it; False if resources ran out."""
    try:
        connection, _ = listening.accept()
    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
        return True
    except OSError as error:
        # Out of descriptors or memory: keep the listener alive, as inetd does.
        if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            return False
        raise
    with connection:
        pid = os.fork()
        if pid == 0:
            listening.close()
            exec_in_child(command, connection)
        children.add(pid)
    return True


def _serve(listening, command, max_connections, signals):
    """Run the accept loop until a stop signal arrives."""
    children = set()
    pause = None
    while True:
        full = max_connections is not None and len(children) >= max_connections
        waiting_on = [signals.read_fd] if full or pause else [signals.read_fd, listening]
        readable, _, _ = select.select(waiting_on, [], [], pause)
        pause = None
        if signals.read_fd in readable:
            delivered = signals.received()
            reap_children(children)
            if delivered & set(_STOP_SIGNALS):
                return
        if listening in readable:
            if not _accept_and_start(listening, command, children):
                pause = RESOURCE_RETRY_SECONDS
            reap_children(children)


def serve_forever(command, host, port, ready=None, max_connections=None):
    """Start `command` once per accepted connection on (host, port) until SIGTERM or SIGINT.

    `ready`, if given, is called with the listening socket once connections are
    accepted. `max_connections` caps the number of sessions running at once;
    further clients wait in the listen backlog. Must run in the main thread,
    because it installs signal handlers. Sessions still running on return are
    neither killed nor waited for (inetd leaves them alone too).
    """
    if not command or not os.path.isabs(command[0]):
        raise ValueError("the server command must start with an absolute path")
    listening = open_listening_socket(host, port)
    listening.setblocking(False)
    signals = SignalPipe()
    try:
        if ready is not None:
            ready(listening)
        _serve(listening, command, max_connections, signals)
    finally:
        listening.close()
        signals.close()


def parse_arguments(argv):
    """Parse the command line: options, then `--`, then the server command."""
    parser = argparse.ArgumentParser(
        prog="python -m server.listener",
        description="Accept TCP connections and run a server per connection on fd 0/1, as inetd does.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on; 0 picks a free one")
    parser.add_argument("--max-connections", type=int, default=None,
                        help="most sessions running at once (default: no limit)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- then the server program (absolute path) and its arguments")
    options = parser.parse_args(argv)
    if options.command[:1] == ["--"]:
        options.command = options.command[1:]
    if not options.command:
        parser.error("missing the server command after --")
    if not os.path.isabs(options.command[0]):
        parser.error("the server program must be an absolute path: %s" % options.command[0])
    return options


def announce(listening):
    """Print the line that tells a supervisor or a test that connections are accepted."""
    print("listening on %s" % format_address(listening), flush=True)


def main(argv=None):
    """Command-line entry point."""
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        serve_forever(options.command, options.host, options.port,
                      ready=announce, max_connections=options.max_connections)
    except OSError as error:
        print("listener: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
