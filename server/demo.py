"""A self-contained demo: the servers on loopback with a demo user and mailbox.

Nothing outside the demo directory is touched and no root is needed. As a
normal user the demo user maps to yourself (a non-root server serves only
its own user); run as root, it maps to `nobody`, so the real privilege drop
after login is exercised too.

    python3 -m server.demo [--dir DIR] [--pop3-port 1110] [--imap-port 1143]
"""

import argparse
import os
import pwd
import signal
import sys
import time

DEMO_USER, DEMO_PASSWORD = "demo", "demo"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SENDERS = ("Ada Lovelace <ada@example.org>", "Grace Hopper <grace@example.net>",
            "Ken Thompson <ken@example.com>", "Barbara Liskov <barbara@example.edu>")
_SUBJECTS = ("Welcome to pyimapd", "Minutes of the Tuesday meeting", "Re: mbox locking",
             "Photos from the trip", "Your weekly report")


def demo_account():
    """(uid, gid) the demo user is served as."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def demo_message(number, when):
    """One demo message as an MTA delivers it (From_ line, header, body)."""
    sender = _SENDERS[number % len(_SENDERS)]
    address = sender.split("<")[1].rstrip(">")
    ctime = time.asctime(time.gmtime(when))
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
    body = ("Hello,\n\nthis is demo message %d of the pyimapd demo mailbox.\n"
            "From here on it is only filler text.\n"
            ".A line that starts with a dot, to show dot-stuffing.\n\n-- \npyimapd\n" % number)
    return ("From %s %s\nFrom: %s\nTo: Demo User <demo@localhost>\nSubject: %s\nDate: %s\n"
            "Message-ID: <demo-%d@pyimapd.example>\n\n%s\n"
            % (address, ctime, sender, _SUBJECTS[number % len(_SUBJECTS)], date, number,
               body.replace("\nFrom ", "\n>From "))).encode("utf-8")


def write_private(path, data, uid, gid, mode=0o600):
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, uid, gid)


def prepare(directory, count=10):
    """Lay out spool, home, passwd file and configuration; return the config path."""
    uid, gid = demo_account()
    spool, home = os.path.join(directory, "spool"), os.path.join(directory, "home")
    for path, mode in ((directory, 0o755), (spool, 0o1777), (home, 0o700)):
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(home, uid, gid)
    inbox = os.path.join(spool, DEMO_USER)
    if not os.path.exists(inbox):
        start = int(time.time()) - 86400 * count
        write_private(inbox, b"".join(demo_message(i, start + 86400 * i)
                                      for i in range(1, count + 1)), uid, gid)
    passwd = os.path.join(directory, "passwd")
    write_private(passwd, ("%s:{PLAIN}%s:%d:%d:Demo User:%s::\n"
                           % (DEMO_USER, DEMO_PASSWORD, uid, gid, home)).encode(), 0, 0, 0o600)
    config = os.path.join(directory, "pyimapd.conf")
    write_private(config, ("# pyimapd demo configuration\n"
                           "mail_location = mbox:~/mail:INBOX=%s/%%u\n"
                           "passwd_file = %s\n"
                           "cram_md5_file = %s/cram-md5.pwd\n"
                           "index_dir = ~/.pyimapd\n"
                           "login_failure_delay = 1\n" % (spool, passwd, directory)).encode(),
                  0, 0, 0o644)
    return config


def announce(host, protocol, port):
    user = "%s:%s" % (DEMO_USER, DEMO_PASSWORD)
    print("pyimapd demo: %s on %s:%d, user %r, password %r"
          % (protocol.upper(), host, port, DEMO_USER, DEMO_PASSWORD))
    if protocol == "pop3":
        print("  curl pop3://%s@%s:%d/        (list messages)" % (user, host, port))
        print("  curl pop3://%s@%s:%d/1       (read message 1)" % (user, host, port))
    else:
        print("  curl imap://%s@%s:%d/        (list mailboxes)" % (user, host, port))
        print("  curl 'imap://%s@%s:%d/INBOX;UID=1'   (read message 1)" % (user, host, port))
    sys.stdout.flush()


def main(argv=None):
    from server.listener import serve_forever

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=os.path.join(os.getcwd(), "demo-run"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pop3-port", type=int, default=1110)
    parser.add_argument("--imap-port", type=int, default=1143)
    args = parser.parse_args(argv)
    directory = os.path.abspath(args.dir)
    config = prepare(directory)
    imap = os.fork()
    if imap == 0:
        _serve(serve_forever, "imap", "imapd.py", config, args.host, args.imap_port)
        os._exit(0)
    try:
        _serve(serve_forever, "pop3", "ipop3d.py", config, args.host, args.pop3_port)
    finally:
        os.kill(imap, signal.SIGTERM)
        os.waitpid(imap, 0)
    return 0


def _serve(serve_forever, protocol, program, config, host, port):
    """Run one inetd-style listener until interrupted."""
    command = [sys.executable, os.path.join(REPO, program), "--config", config]
    try:
        serve_forever(command, host, port,
                      ready=lambda sock: announce(host, protocol, sock.getsockname()[1]))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
