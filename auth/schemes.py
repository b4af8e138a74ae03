"""Dovecot password schemes: what a stored password can prove, and how.

A passwd_file password is `{SCHEME}value`. The scheme decides which logins
can be checked against it (Dovecot's rule: a challenge mechanism needs the
plaintext or its own precomputed form):

| scheme | password logins (USER/PASS, LOGIN, PLAIN) | CRAM-MD5 | APOP |
|---|---|---|---|
| PLAIN, CLEARTEXT | yes | yes | yes |
| CRAM-MD5 (HMAC-MD5 context, 64 hex digits) | yes | yes | no |
| SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT, CRYPT | yes | no | no |

The crypt(3) schemes are checked by the C library through Python's `crypt`
module (deprecated, still in 3.11 and 3.12; imported only at login). Where
it is missing, or the C library lacks a method, those passwords fail.
"""

import hashlib
import hmac

PASSWORD, CRAM_MD5, APOP = "password", "cram-md5", "apop"

PLAINTEXT_SCHEMES = ("PLAIN", "CLEARTEXT")
CRAM_MD5_SCHEME = "CRAM-MD5"
# Scheme -> the hash prefixes it may carry. Dovecot's CRYPT takes whatever the C
# library verifies; DES crypt (no "$") is refused: it reads 8 characters only.
CRYPT_PREFIXES = {
    "SHA512-CRYPT": ("$6$",),
    "SHA256-CRYPT": ("$5$",),
    "BLF-CRYPT": ("$2y$", "$2b$", "$2a$"),
    "MD5-CRYPT": ("$1$",),
    "CRYPT": ("$",),
}
CRAM_MD5_CONTEXT_DIGITS = 64


def known(scheme):
    """True if a password stored with this scheme can be checked at all."""
    return scheme in PLAINTEXT_SCHEMES or scheme == CRAM_MD5_SCHEME or scheme in CRYPT_PREFIXES


def _constant_time_equal(given, expected):
    return hmac.compare_digest(given, expected)


class StoredSecret:
    """A stored password (scheme and value) and the checks it allows."""

    def __init__(self, scheme, value):
        self.scheme = scheme
        self.value = value

    def allows(self, mechanism):
        """True if a login by mechanism (PASSWORD, CRAM_MD5, APOP) can be checked against this."""
        if self.scheme in PLAINTEXT_SCHEMES:
            return True
        if self.scheme == CRAM_MD5_SCHEME:
            return mechanism in (PASSWORD, CRAM_MD5) and _is_context(self.value)
        return mechanism == PASSWORD and self.scheme in CRYPT_PREFIXES

    def plaintext(self):
        """The secret itself as bytes, for APOP; None unless stored as plaintext."""
        if self.scheme not in PLAINTEXT_SCHEMES:
            return None
        return self.value.encode("utf-8", "surrogateescape")

    def matches_password(self, password):
        """True if password (bytes) is the one stored."""
        if self.scheme in PLAINTEXT_SCHEMES:
            return _constant_time_equal(password, self.plaintext())
        if self.scheme == CRAM_MD5_SCHEME:
            return self.allows(PASSWORD) and _cram_md5_matches(password, self.value)
        if self.scheme in CRYPT_PREFIXES:
            return _crypt_matches(password, self.value, CRYPT_PREFIXES[self.scheme])
        return False

    def cram_md5_digest(self, challenge):
        """HMAC-MD5(secret, challenge) as lower-case hex (RFC 2195); None if not computable."""
        if self.scheme in PLAINTEXT_SCHEMES:
            return hmac.new(self.plaintext(), challenge, hashlib.md5).hexdigest()
        if self.allows(CRAM_MD5):
            from auth.md5context import hmac_md5_hex

            return hmac_md5_hex(self.value.lower(), challenge)
        return None


def _is_context(value):
    return len(value) == CRAM_MD5_CONTEXT_DIGITS and all(c in "0123456789abcdefABCDEF" for c in value)


def _cram_md5_matches(password, context):
    from auth.md5context import cram_md5_context

    return _constant_time_equal(cram_md5_context(password), context.lower())


def _crypt_matches(password, stored, prefixes):
    """crypt(3) of password with stored as salt reproduces stored."""
    if not stored.startswith(prefixes):
        return False
    crypt = _crypt_function()
    try:
        computed = crypt(password.decode("utf-8"), stored) if crypt else None
    except (UnicodeDecodeError, ValueError, OSError):
        # Not UTF-8 (the crypt module takes str), a NUL, or a method the C library refuses.
        return False
    return computed is not None and _constant_time_equal(computed.encode(), stored.encode())


def _crypt_function():
    """Python's crypt.crypt, or None where the module is gone (Python 3.13 and later)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            return None
    return crypt.crypt
