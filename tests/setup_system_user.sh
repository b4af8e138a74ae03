#!/bin/sh
# Prepare this host for the real-PAM and privilege tests (run as root; idempotent):
# - the system user pyimapd-test with password Test-pass-1 and shell /bin/false
#   (a mail-only account: POP/IMAP logins must work without a login shell);
# - /etc/pam.d/pop and /etc/pam.d/imap, the service names UW's servers use,
#   made from the system's common includes as UW's BUILD suggests (copy an
#   existing service). Existing files are left alone.
set -eu

TEST_USER=pyimapd-test
TEST_PASSWORD=Test-pass-1

if [ "$(id -u)" != 0 ]; then
    echo "setup_system_user.sh: must run as root" >&2
    exit 1
fi

if ! getent passwd "$TEST_USER" >/dev/null; then
    useradd -m -s /bin/false "$TEST_USER"
fi
# Set the password every time, so a changed or locked account is repaired.
echo "$TEST_USER:$TEST_PASSWORD" | chpasswd

for service in pop imap; do
    file=/etc/pam.d/$service
    if [ ! -e "$file" ]; then
        printf '# PAM service "%s" for pyimapd (UW service name).\n@include common-auth\n@include common-account\n' \
            "$service" >"$file"
        chmod 0644 "$file"
    fi
done
