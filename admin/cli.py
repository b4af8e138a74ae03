"""The pyimapd-mailutil command line: options, the commands, messages and exit statuses."""

import argparse
import sys

from admin.context import ToolError, describe, is_path

PROGRAM = "pyimapd-mailutil"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3

DESCRIPTION = """\
Check, repair, create, delete, rename, copy, move and transfer mailboxes of
pyimapd users, in the spirit of UW's mailutil.

A MAILBOX is a folder name of the user (INBOX, Sent, lists/python, as UTF-8
text) or, when it starts with /, ./ or ../, the path of an mbox file or of
a Maildir folder (a directory holding cur/, new/ and tmp/). Run as
root, the tool works as the user (--user, else the owner of the paths), so the
files it creates belong to that user."""

EPILOG = """\
exit status: 0 success; 1 failure; 2 bad usage; 3 check found damage and
--repair was not given."""


def _common_options():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--user", metavar="USER", help="whose mail (default: yours; as root: "
                        "the owner of the paths given)")
    common.add_argument("--config", metavar="FILE", help="pyimapd configuration (default: "
                        "$PYIMAPD_CONFIG or /etc/pyimapd.conf)")
    common.add_argument("--location", metavar="SPEC", help="the user's mail_location, "
                        "overriding the configuration (e.g. mbox:~/mail:INBOX=/var/mail/%%u)")
    return common


def build_parser():
    parser = argparse.ArgumentParser(prog=PROGRAM, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    common = [_common_options()]
    check = commands.add_parser("check", parents=common, help="report damage in an mbox "
                                "file and its index, or in a Maildir folder; --repair mends it")
    check.add_argument("mailbox", metavar="MAILBOX")
    check.add_argument("--repair", action="store_true", help="fix what is found, under the "
                       "mailbox's locks, keeping every intact message")
    for name, text in (("create", "create a folder (NAME/ makes a directory)"),
                       ("delete", "delete a folder or an empty directory")):
        commands.add_parser(name, parents=common, help=text).add_argument(
            "mailbox", metavar="MAILBOX")
    rename = commands.add_parser("rename", parents=common, help="rename a folder (INBOX: "
                                 "move its messages)")
    rename.add_argument("old", metavar="OLD")
    rename.add_argument("new", metavar="NEW")
    for name, text in (("copy", "copy messages, with their flags, keywords and dates"),
                       ("move", "move messages, with their flags, keywords and dates")):
        command = commands.add_parser(name, parents=common, help=text)
        command.add_argument("source", metavar="SRC")
        command.add_argument("target", metavar="DST")
        command.add_argument("--uids", metavar="SET", help="only these UIDs (IMAP syntax: "
                             "1:5,9,20:*); default all")
    transfer = commands.add_parser("transfer", parents=common, help="copy a whole account "
                                   "between mail locations, keeping UIDs and UIDVALIDITY")
    transfer.add_argument("source", metavar="SRC-LOCATION", help="e.g. mbox:~:INBOX=/var/"
                          "spool/mail/%%u")
    transfer.add_argument("target", metavar="DST-LOCATION", help="e.g. maildir:~/Maildir")
    return parser


def _mailbox_arguments(args):
    if args.command == "transfer":
        return []
    if args.command in ("copy", "move"):
        return [args.source, args.target]
    if args.command == "rename":
        return [args.old, args.new]
    return [args.mailbox]


def _setup(args):
    """Configuration, principal and privileges; the Mailboxes resolver."""
    from admin.context import Mailboxes, become, choose_principal, load_config

    config = load_config(args.config, args.location)
    arguments = _mailbox_arguments(args)
    paths = [argument for argument in arguments if is_path(argument)]
    needs_user = args.command == "transfer" or len(paths) < len(arguments)
    principal = choose_principal(config, args.user, paths, needs_user)
    become(principal, config)
    return Mailboxes(config, principal)


def run_check(mailboxes, args, out):
    from mailstore.maildirstore import MaildirStore

    store, name = mailboxes.resolve(args.mailbox)
    if isinstance(store, MaildirStore):
        from admin.maildircheck import check
    else:
        from admin.check import check
    report = check(store, name, args.repair)
    out("%s: %s" % (args.mailbox, report.summary))
    for problem in report.problems:
        out("  problem: %s" % problem)
    for action in report.actions:
        out("  repaired: %s" % action)
    if report.problems and not args.repair:
        out("%s: damaged; run again with --repair to fix it" % args.mailbox)
        return EXIT_DAMAGED
    out("%s: %s" % (args.mailbox, "repaired" if report.problems else "no problems found"))
    return EXIT_OK


def run_create(mailboxes, args, out):
    store, name = mailboxes.resolve(args.mailbox)
    if args.mailbox.endswith("/") and not name.endswith(b"/"):
        name += b"/"  # a path's basename loses it
    store.create(name)
    out("created %s" % args.mailbox)
    return EXIT_OK


def run_delete(mailboxes, args, out):
    store, name = mailboxes.resolve(args.mailbox)
    store.delete(name.rstrip(b"/"))
    out("deleted %s" % args.mailbox)
    return EXIT_OK


def run_rename(mailboxes, args, out):
    store, old, new = mailboxes.resolve_pair(args.old, args.new)
    store.rename(old, new)
    out("renamed %s to %s" % (args.old, args.new))
    return EXIT_OK


def run_copy(mailboxes, args, out):
    from admin.copying import copy_between, parse_uid_set

    try:
        uid_ranges = parse_uid_set(args.uids) if args.uids else None
    except ValueError as error:
        raise ToolError(str(error)) from None
    source = mailboxes.resolve(args.source)
    target = mailboxes.resolve(args.target)
    count, kept = copy_between(source, target, uid_ranges, args.command == "move")
    out("%s %d messages from %s to %s (%s)" % (
        "moved" if args.command == "move" else "copied", count, args.source, args.target,
        "UIDs kept" if kept else "new UIDs"))
    return EXIT_OK


def run_transfer(mailboxes, args, out):
    from admin.transfer import transfer

    if args.source == args.target:
        raise ToolError("source and destination are the same location")
    source, target = mailboxes.store_at(args.source), mailboxes.store_at(args.target)
    count = transfer(source, target, out)
    out("transferred %d messages from %s to %s" % (count, args.source, args.target))
    return EXIT_OK


COMMANDS = {"check": run_check, "create": run_create, "delete": run_delete,
            "rename": run_rename, "copy": run_copy, "move": run_copy, "transfer": run_transfer}


def main(argv=None):
    """The console entry point; returns the exit status."""
    from mailstore import StoreError

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)

    def out(text):
        print(text, flush=True)

    try:
        return COMMANDS[args.command](_setup(args), args, out)
    except (ToolError, StoreError, OSError) as error:
        _fail(args.command, describe(error) if not isinstance(error, ToolError) else str(error))
    except KeyboardInterrupt:
        _fail(args.command, "interrupted")
    return EXIT_FAILURE


def _fail(command, text):
    sys.stdout.flush()
    print("%s: %s: %s" % (PROGRAM, command, text), file=sys.stderr, flush=True)

