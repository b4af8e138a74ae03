"""Check credentials the way UW's server_login and auth_md5 do (servers.md §4).

Where a password is checked, in order:
1. /etc/cram-md5.pwd (config.cram_md5_file) when it is present: then it decides
   for every user, and the principal comes from the system passwd database;
2. the passwd_file, when configured and the user is listed in it: the principal
   comes from that file, and the password's scheme (auth.schemes) decides which
   mechanisms can be checked;
3. PAM with the service `pop` or `imap`, then the system passwd database.

APOP and CRAM-MD5 need a shared secret, so they use only sources 1 and 2.
Every failure raises the same AuthFailed; its text is for syslog only and never
contains a password or a digest.
"""

import hashlib
import hmac
import time
from collections import namedtuple

from auth import AuthFailed, Principal, challenge_mechanisms_enabled, passwd, passwdfile, schemes, secretsfile


def _as_bytes(value):
    """Client data as bytes; str is taken as UTF-8, with undecodable bytes restored."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return bytes(value)


def _same_secret(given, expected):
    return hmac.compare_digest(_as_bytes(given), _as_bytes(expected))


class StoredCredential(namedtuple("StoredCredential", "secret principal")):
    """A user's stored password (schemes.StoredSecret) together with the account it unlocks."""

    __slots__ = ()


class Authenticator:
    """The one place that says yes or no to a user's credentials."""

    def __init__(self, config, log=None, service=None):
        self.config = config
        self.service = service or config.pam_service
        self._log = log
        # When the last check began (time.monotonic()): failures are answered a
        # fixed time after it, whatever the check cost (server.login).
        self.check_started = None

    def challenge_mechanisms_enabled(self):
        """True when APOP and CRAM-MD5 can be offered: some plaintext secrets are on hand."""
        return challenge_mechanisms_enabled(self.config)

    def check_password(self, user, password, rhost=None):
        """Return the Principal for user if password is right, else raise AuthFailed.

        rhost (the client address) only goes into the failure text: python-pam
        2.x cannot hand PAM_RHOST to PAM (servers.md §4.1).
        """
        self.check_started = time.monotonic()
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
        self.check_started = time.monotonic()
        stored = self._credential_for(user, schemes.APOP)
        expected = hashlib.md5(_as_bytes(timestamp) + stored.secret.plaintext()).hexdigest()
        if not _same_secret(hexdigest, expected):
            raise AuthFailed("APOP digest does not match")
        return stored.principal

    def check_cram_md5(self, user, challenge, hexdigest):
        """Return the Principal if hexdigest is HMAC-MD5(secret, challenge) in lower-case hex (RFC 2195)."""
        self.check_started = time.monotonic()
        stored = self._credential_for(user, schemes.CRAM_MD5)
        expected = stored.secret.cram_md5_digest(_as_bytes(challenge))
        if not _same_secret(hexdigest, expected):
            raise AuthFailed("CRAM-MD5 digest does not match")
        return stored.principal

    def _password_verifier(self, user, rhost):
        """A function password -> Principal for whichever source decides for user."""
        stored = self._stored_credential(user)
        if stored is None:
            return lambda password: self._check_pam(user, password, rhost)
        self._require_mechanism(stored, schemes.PASSWORD)

        def compare(password):
            if not stored.secret.matches_password(password):
                raise AuthFailed("password does not match the stored secret")
            return stored.principal

        return compare

    def _credential_for(self, user, mechanism):
        """The StoredCredential of user if mechanism can be checked against it; else AuthFailed."""
        passwd.validate_user_name(user)
        stored = self._stored_credential(user)
        if stored is None:
            raise AuthFailed("no stored secret for this user")
        self._require_mechanism(stored, mechanism)
        return stored

    def _require_mechanism(self, stored, mechanism):
        """AuthFailed unless a login by mechanism can be checked against the stored password."""
        secret = stored.secret
        if not schemes.known(secret.scheme):
            self._report("err", "%s: user %s has a {%s} password, a scheme this server cannot check"
                         % (self.config.passwd_file, stored.principal.name, secret.scheme))
        if not secret.allows(mechanism):
            raise AuthFailed("a {%s} password cannot check a %s login" % (secret.scheme, mechanism))

    def _stored_credential(self, user):
        """The StoredCredential for user, or None when PAM decides; AuthFailed if user cannot log in."""
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
        return StoredCredential(schemes.StoredSecret("PLAIN", secret), passwd.lookup_system_user(user))

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
        return StoredCredential(entry.secret, entry.principal)

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
