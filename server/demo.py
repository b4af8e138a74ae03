"""A self-contained demo: the servers on loopback with a demo user and mailbox.

Nothing outside the demo directory is touched and no root is needed. As a
normal user the demo user maps to yourself (a non-root server serves only
its own user); run as root, it maps to `nobody`, so the real privilege drop
after login is exercised too.

    python3 -m server.demo [--dir DIR] [--pop3-port 1110]
"""

import argparse
import os
import pwd
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


def announce(host, port):
    print("pyimapd demo: POP3 on %s:%d, user %r, password %r" % (host, port, DEMO_USER,
                                                                 DEMO_PASSWORD))
    print("  curl pop3://%s:%s@%s:%d/        (list messages)" % (DEMO_USER, DEMO_PASSWORD, host, port))
    print("  curl pop3://%s:%s@%s:%d/1       (read message 1)" % (DEMO_USER, DEMO_PASSWORD, host, port))
    print("  python3 -c \"import poplib; p=poplib.POP3('%s', %d); p.user('demo'); "
          "p.pass_('demo'); print(p.stat()); p.quit()\"" % (host, port))
    print("Stop with Ctrl-C.")
    sys.stdout.flush()


def main(argv=None):
    from server.listener import serve_forever

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=os.path.join(os.getcwd(), "demo-run"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pop3-port", type=int, default=1110)
    args = parser.parse_args(argv)
    directory = os.path.abspath(args.dir)
    config = prepare(directory)
    command = [sys.executable, os.path.join(REPO, "ipop3d.py"), "--config", config]
    serve_forever(command, args.host, args.pop3_port,
                  ready=lambda sock: announce(args.host, sock.getsockname()[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
