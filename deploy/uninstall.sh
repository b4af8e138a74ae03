#!/usr/bin/env bash
# Remove what deploy/install.sh installed: sudo bash deploy/uninstall.sh [--prefix DIR] [--root DIR]
# (the same --prefix and --root as given to install.sh).
#
# Removed: the virtual environment PREFIX, the xinetd service files (a file that
# install.sh moved aside as NAME.pyimapd-orig is put back), the systemd units
# (disabled and stopped first), the man pages.
# /etc/pyimapd.conf, /etc/pam.d/imap and /etc/pam.d/pop are removed only if install.sh
# created them and they are unchanged since; an edited file holds local configuration
# and is kept (delete it by hand). Mail is never touched: spool files, users' folders
# and their ~/.pyimapd index directories stay.
set -euo pipefail

PREFIX=/opt/pyimapd
ROOT=
MANIFEST_NAME=share/pyimapd/created-files
XINETD_SERVICES="imap imaps ipop3 pop3s imap-wait imaps-wait ipop3-wait pop3s-wait"
SOCKETS="imap.socket imaps.socket pop3.socket pop3s.socket
         imap-wait.socket imaps-wait.socket pop3-wait.socket pop3s-wait.socket"
UNITS="imap.socket imap@.service imaps.socket imaps@.service pop3.socket pop3@.service pop3s.socket pop3s@.service
       imap-wait.socket imap-wait.service imaps-wait.socket imaps-wait.service
       pop3-wait.socket pop3-wait.service pop3s-wait.socket pop3s-wait.service"
MAN_PAGES="imapd.8 ipop3d.8 pyimapd-mailutil.8"
SYSTEMD_DIR=/usr/local/lib/systemd/system
MAN_DIR=/usr/local/share/man/man8

usage() {
    sed -n '2,3s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || usage; ROOT=$(cd "$2" && pwd); shift 2 ;;
        -h|--help) usage ;;
        *) echo "uninstall.sh: unknown option $1" >&2; usage ;;
    esac
done
case "$PREFIX" in /*) ;; *) echo "uninstall.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
[ "$ROOT" = / ] && ROOT=
if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    echo "uninstall.sh: run as root (sudo bash deploy/uninstall.sh), or use --root DIR" >&2
    exit 1
fi

VENV=$ROOT$PREFIX
MANIFEST=$VENV/$MANIFEST_NAME

say() { echo "uninstall.sh: $*"; }

systemd_running() {
    [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

remove_units() {
    local socket unit
    if systemd_running; then
        for socket in $SOCKETS; do
            if [ -e "$SYSTEMD_DIR/$socket" ]; then
                systemctl disable --now "$socket" || true
            fi
        done
        # A wait-mode server still accepting: stop it (its sessions finish, KillMode=process).
        for unit in $UNITS; do
            case "$unit" in
                *-wait.service) [ -e "$SYSTEMD_DIR/$unit" ] && { systemctl stop "$unit" || true; } ;;
            esac
        done
    else
        # No running systemd (or another root): drop the enablement links ourselves.
        for socket in $SOCKETS; do
            local link=$ROOT/etc/systemd/system/sockets.target.wants/$socket
            if [ -L "$link" ] && [ "$(readlink "$link")" = "$SYSTEMD_DIR/$socket" ]; then
                rm -f "$link"
            fi
        done
    fi
    for unit in $UNITS; do
        rm -f "$ROOT$SYSTEMD_DIR/$unit"
    done
    if systemd_running; then
        systemctl daemon-reload
    fi
    say "removed the systemd units"
}

remove_xinetd() {
    local name target
    for name in $XINETD_SERVICES; do
        target=$ROOT/etc/xinetd.d/$name
        if [ -e "$target" ] && grep -q pyimapd "$target"; then
            rm -f "$target"
            say "removed /etc/xinetd.d/$name"
        fi
        if [ -e "$target.pyimapd-orig" ] && [ ! -e "$target" ]; then
            mv "$target.pyimapd-orig" "$target"
            say "restored the original /etc/xinetd.d/$name"
        fi
    done
}

remove_man_pages() {
    local page
    for page in $MAN_PAGES; do
        rm -f "$ROOT$MAN_DIR/$page"
    done
    say "removed the man pages"
}

# Files install.sh created (config, PAM): remove those still exactly as created.
remove_created_files() {
    local path sum
    [ -f "$MANIFEST" ] || return 0
    while read -r path sum; do
        [ -n "$path" ] && [ -e "$ROOT$path" ] || continue
        if [ "$(sha256sum <"$ROOT$path" | cut -d' ' -f1)" = "$sum" ]; then
            rm -f "$ROOT$path"
            say "removed $path"
        else
            say "kept $path: changed since install (local configuration)"
        fi
    done <"$MANIFEST"
}

remove_venv() {
    if [ -e "$VENV/pyvenv.cfg" ]; then
        rm -rf "$VENV"
        say "removed $PREFIX"
    elif [ -e "$VENV" ]; then
        say "kept $PREFIX: not a virtual environment made by install.sh"
    fi
}

remove_units
remove_xinetd
remove_man_pages
remove_created_files
remove_venv
say "done. Reload xinetd if it served one of the removed services."
