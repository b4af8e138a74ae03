#!/usr/bin/env bash
# Install pyimapd from this checkout: sudo bash deploy/install.sh [options]
#
#   --prefix DIR     the virtual environment to install into (default /opt/pyimapd);
#                    the service files and units are pointed at DIR/bin/imapd and ipop3d
#   --root DIR       install under DIR instead of / (DESTDIR style, for tests and staging):
#                    files name their final paths, but the virtual environment itself
#                    is built at DIR/PREFIX and only runs from there
#   --wheel-dir DIR  install from the wheels in DIR only, without PyPI; DIR needs python-pam,
#                    filelock and the build tools setuptools and wheel, e.g. from
#                    pip download -d DIR python-pam filelock setuptools wheel
#
# What it installs (deploy/uninstall.sh removes it again):
#   PREFIX/                                  a venv of /usr/bin/python3 holding pyimapd
#   /etc/pyimapd.conf                        every setting commented out with its default;
#                                            an existing file is never touched
#   /etc/pam.d/imap, /etc/pam.d/pop          only if absent (UW's PAM service names)
#   /etc/xinetd.d/imap imaps ipop3 pop3s     "disable" kept as the administrator set it;
#     and their -wait variants (wait = yes)  new files arrive disabled (disable = yes)
#   /usr/local/lib/systemd/system/           imap, imaps, pop3, pop3s .socket and @.service,
#                                            and -wait.socket/-wait.service (Accept=no),
#                                            not enabled
#   /usr/local/share/man/man8/               imapd.8, ipop3d.8, pyimapd-mailutil.8
# Safe to run again: an upgrade reinstalls the package and the files above, and keeps
# local configuration. Nothing is enabled or reloaded that was not before.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/pyimapd
ROOT=
WHEEL_DIR=
# Where deploy/uninstall.sh finds what install created and may remove (path, sha256).
MANIFEST_NAME=share/pyimapd/created-files
XINETD_SERVICES="imap imaps ipop3 pop3s imap-wait imaps-wait ipop3-wait pop3s-wait"
UNITS="imap.socket imap@.service imaps.socket imaps@.service pop3.socket pop3@.service pop3s.socket pop3s@.service
       imap-wait.socket imap-wait.service imaps-wait.socket imaps-wait.service
       pop3-wait.socket pop3-wait.service pop3s-wait.socket pop3s-wait.service"
MAN_PAGES="imapd.8 ipop3d.8 pyimapd-mailutil.8"
SYSTEMD_DIR=/usr/local/lib/systemd/system
MAN_DIR=/usr/local/share/man/man8

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || usage; ROOT=$2; shift 2 ;;
        --wheel-dir) [ $# -ge 2 ] || usage; WHEEL_DIR=$(cd "$2" && pwd); shift 2 ;;
        -h|--help) usage ;;
        *) echo "install.sh: unknown option $1" >&2; usage ;;
    esac
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" = / ] && ROOT=
fi
if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo bash deploy/install.sh), or use --root DIR" >&2
    exit 1
fi

VENV=$ROOT$PREFIX
MANIFEST=$VENV/$MANIFEST_NAME

say() { echo "install.sh: $*"; }

# Write stdin to $1 with mode $2, replacing the file in one step.
put_file() {
    local target=$1 mode=$2 tmp
    mkdir -p "$(dirname "$target")"
    tmp=$(mktemp "$(dirname "$target")/.pyimapd-install.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$target"
}

# Create $1 from stdin only if it does not exist, and record it for uninstall.
create_if_absent() {
    local path=$1 mode=$2
    if [ -e "$ROOT$path" ]; then
        say "kept $path (exists)"
        cat >/dev/null
        return
    fi
    put_file "$ROOT$path" "$mode"
    echo "$path $(sha256sum <"$ROOT$path" | cut -d' ' -f1)" >>"$MANIFEST"
    say "created $path"
}

# Point a shipped file's /opt/pyimapd paths at PREFIX.
at_prefix() {
    sed "s|/opt/pyimapd/|$PREFIX/|g" "$1"
}

install_package() {
    if [ -e "$VENV" ] && [ ! -e "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV")" ]; then
        echo "install.sh: $VENV exists and is not a virtual environment; choose another --prefix" >&2
        exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        /usr/bin/python3 -m venv "$VENV"
        say "created the virtual environment $PREFIX"
    fi
    # Build from a copy, so that installing never writes build/ or egg-info into the checkout.
    local build
    build=$(mktemp -d)
    tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude='*.egg-info' --exclude=./build \
        --exclude=./dist --exclude=./demo-run --exclude=__pycache__ -cf - . | tar -C "$build" -xf -
    local pip_options=(--quiet --disable-pip-version-check)
    [ -n "$WHEEL_DIR" ] && pip_options+=(--no-index --find-links "$WHEEL_DIR")
    "$VENV/bin/python" -m pip install "${pip_options[@]}" "$build" </dev/null
    rm -rf "$build"
    mkdir -p "$(dirname "$MANIFEST")"
    touch "$MANIFEST"
    say "installed pyimapd into $PREFIX (bin/imapd, bin/ipop3d, bin/pyimapd-mailutil)"
}

install_config() {
    local text
    # -I: the installed package, not this checkout, decides which settings exist.
    text=$("$VENV/bin/python" -I "$SRC/deploy/make_config.py")
    printf '%s\n' "$text" | create_if_absent /etc/pyimapd.conf 0644
}

install_pam() {
    local service
    for service in imap pop; do
        printf '# PAM service "%s" of pyimapd (UW imapd/ipop3d use this name).\n@include common-auth\n@include common-account\n' \
            "$service" | create_if_absent "/etc/pam.d/$service" 0644
    done
}

# The value of "disable" in an existing xinetd service file; no line means enabled.
current_disable() {
    local value
    value=$(sed -n 's/^[[:space:]]*disable[[:space:]]*=[[:space:]]*\([a-z]*\).*/\1/p' "$1" | tail -n 1)
    echo "${value:-no}"
}

install_xinetd() {
    local name target disable
    for name in $XINETD_SERVICES; do
        target=$ROOT/etc/xinetd.d/$name
        disable=yes
        if [ -e "$target" ]; then
            disable=$(current_disable "$target")
            if ! grep -q pyimapd "$target"; then
                # Another server's file (a UW imapd package): keep it where xinetd ignores
                # it (a name with a dot) and where uninstall puts it back from.
                mv "$target" "$target.pyimapd-orig"
                say "moved the existing /etc/xinetd.d/$name to $name.pyimapd-orig"
            fi
        fi
        at_prefix "$SRC/xinetd.d/$name" \
            | sed "s/^\([[:space:]]*disable[[:space:]]*=[[:space:]]*\).*/\1$disable/" \
            | put_file "$target" 0644
        say "installed /etc/xinetd.d/$name (disable = $disable)"
    done
}

install_units_and_man() {
    local unit page
    for unit in $UNITS; do
        at_prefix "$SRC/deploy/systemd/$unit" | put_file "$ROOT$SYSTEMD_DIR/$unit" 0644
    done
    say "installed the systemd units into $SYSTEMD_DIR (not enabled)"
    for page in $MAN_PAGES; do
        put_file "$ROOT$MAN_DIR/$page" 0644 <"$SRC/man/$page"
    done
    say "installed the man pages imapd(8), ipop3d(8) and pyimapd-mailutil(8) into $MAN_DIR"
    if [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl daemon-reload
    fi
}

check_services() {
    local entry
    [ -z "$ROOT" ] || return 0
    for entry in pop3/tcp:110 pop3s/tcp:995 imap/tcp:143 imaps/tcp:993; do
        if ! getent services "${entry%%:*}" >/dev/null; then
            say "warning: /etc/services lacks ${entry%%/*} ${entry##*:}/tcp (xinetd and the TLS-by-port rule need it)"
        fi
    done
}

install_package
install_config
install_pam
install_xinetd
install_units_and_man
check_services
say "done. Enable a service: set disable = no in /etc/xinetd.d/<service> and reload xinetd,"
say "or: systemctl enable --now imap.socket (imaps, pop3, pop3s likewise; imap-wait.socket"
say "and so on for wait mode, on busy hosts). See imapd(8)."
