"""Check credentials the way UW's server_login and auth_md5 do (servers.md §4).

Where a password is checked, in order:
1. /etc/cram-md5.pwd (config.cram_md5_file) when it is present: then it decides
   for every user, and the principal comes from the system passwd database;
2. the passwd_file, when configured and the user is listed in it: the principal
   comes from that file;
3. PAM with the service `pop` or `imap`, then the system passwd database.

APOP and CRAM-MD5 need a shared secret, so they use only sources 1 and 2.
Every failure raises the same AuthFailed; its text is for syslog only and never
contains a password or a digest.
"""

import hashlib
import hmac
from dataclasses import dataclass

from auth import AuthFailed, Principal, challenge_mechanisms_enabled, passwd, passwdfile, secretsfile


def _as_bytes(value):
    """Client data as bytes; str is taken as UTF-8, with undecodable bytes restored."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return bytes(value)


def _same_secret(given, expected):
    return hmac.compare_digest(_as_bytes(given), _as_bytes(expected))


@dataclass(frozen=True)
class SharedSecret:
    """A user's plaintext secret together with the account it unlocks."""

    secret: bytes
    principal: Principal


class Authenticator:
    """The one place that says yes or no to a user's credentials."""

    def __init__(self, config, log=None, service=None):
        self.config = config
        self.service = service or config.pam_service
        self._log = log

    def challenge_mechanisms_enabled(self):
        """True when APOP and CRAM-MD5 can be offered: some plaintext secrets are on hand."""
        return challenge_mechanisms_enabled(self.config)

    def check_password(self, user, password, rhost=None):
        """Return the Principal for user if password is right, else raise AuthFailed.

        rhost (the client address) only goes into the failure text: python-pam
        2.x cannot hand PAM_RHOST to PAM (servers.md §4.1).
        """
        passwd.validate_user_name(user)
        verify = self._password_verifier(user, rhost)
        password = _as_bytes(password)
        try:
            return verify(password)
        except AuthFailed:
            # UW server_login: some broken clients send a space before the password.
            if not password.startswith(b" "):
                raise
        return verify(password[1:])

    def check_apop(self, user, timestamp, hexdigest):
        """Return the Principal if hexdigest is MD5(timestamp + secret) in lower-case hex (RFC 1939)."""
        shared = self._required_shared_secret(user)
        expected = hashlib.md5(_as_bytes(timestamp) + shared.secret).hexdigest()
        if not _same_secret(hexdigest, expected):
            raise AuthFailed("APOP digest does not match")
        return shared.principal

    def check_cram_md5(self, user, challenge, hexdigest):
        """Return the Principal if hexdigest is HMAC-MD5(secret, challenge) in lower-case hex (RFC 2195)."""
        shared = self._required_shared_secret(user)
        expected = hmac.new(shared.secret, _as_bytes(challenge), hashlib.md5).hexdigest()
        if not _same_secret(hexdigest, expected):
            raise AuthFailed("CRAM-MD5 digest does not match")
        return shared.principal

    def _password_verifier(self, user, rhost):
        """A function password -> Principal for whichever source decides for user."""
        shared = self._shared_secret(user)
        if shared is None:
            return lambda password: self._check_pam(user, password, rhost)

        def compare(password):
            if not _same_secret(password, shared.secret):
                raise AuthFailed("password does not match the stored secret")
            return shared.principal

        return compare

    def _required_shared_secret(self, user):
        passwd.validate_user_name(user)
        shared = self._shared_secret(user)
        if shared is None:
            raise AuthFailed("no shared secret for this user")
        return shared

    def _shared_secret(self, user):
        """The SharedSecret for user, or None when PAM decides; AuthFailed if user cannot log in."""
        secrets = secretsfile.load_secrets(self.config.cram_md5_file, self._log)
        if secrets is not None:
            return self._from_secrets_file(secrets, user)
        if self.config.passwd_file:
            return self._from_passwd_file(user)
        return None

    def _from_secrets_file(self, secrets, user):
        # UW: once the file exists, a user it does not list has no password at all.
        secret = secrets.secret_for(user)
        if secret is None:
            raise AuthFailed("not listed in %s" % secrets.path)
        return SharedSecret(_as_bytes(secret), passwd.lookup_system_user(user))

    def _from_passwd_file(self, user):
        path = self.config.passwd_file
        try:
            users = passwdfile.read_passwd_file(path)
        except OSError as error:
            # Fail closed: without the file nobody can tell which names are virtual.
            message = "%s: cannot read: %s; every password login fails" % (path, error.strerror)
            self._report("err", message)
            raise AuthFailed("passwd_file unreadable") from None
        entry = passwdfile.find_virtual_user(users, user)
        if entry is None:
            return None
        if entry.principal.uid == 0:
            raise AuthFailed("uid 0 may not log in")
        if entry.secret is None:
            raise AuthFailed("%s has no {PLAIN} password in %s" % (entry.principal.name, path))
        return SharedSecret(_as_bytes(entry.secret), entry.principal)

    def _check_pam(self, user, password, rhost):
        entry = passwd.find_system_entry(user)
        if entry is not None and entry.pw_uid == 0:
            raise AuthFailed("uid 0 may not log in")
        # An unknown name still goes through PAM, so that it costs the same
        # time (PAM's failure delay) as a wrong password for a real user.
        accepted, reason = self._pam_authenticate(entry.pw_name if entry else user, password)
        if entry is None:
            raise AuthFailed("no such system user")
        if not accepted:
            where = _client_suffix(rhost)
            raise AuthFailed("PAM service %s refused %s%s: %s" % (self.service, entry.pw_name, where, reason))
        return passwd.principal_from_entry(entry)

    def _pam_authenticate(self, name, password):
        """(accepted, PAM's reason) for name and password under this service."""
        import pam

        handle = pam.pam()
        try:
            accepted = handle.authenticate(name, password, service=self.service)
        except ValueError:
            # python-pam refuses a NUL in the name or password before calling PAM.
            return False, "NUL in credentials"
        return bool(accepted), handle.reason

    def _report(self, priority, message):
        if self._log is not None:
            self._log(priority, message)


def _client_suffix(rhost):
    return " from %s" % rhost if rhost else ""
