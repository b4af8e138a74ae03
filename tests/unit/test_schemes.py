"""Dovecot password schemes (auth.schemes, auth.md5context) against hashes made by Dovecot itself.

Every stored value below was printed by Dovecot 2.3.19's `doveadm pw -s SCHEME -p PASSWORD`,
so the tests need no Dovecot installed and check compatibility, not self-consistency.
"""

import hashlib
import hmac

import pytest

from auth import md5context, schemes
from auth.schemes import APOP, CRAM_MD5, PASSWORD, StoredSecret

# RFC 2195 section 2's example: user tim, this secret, this challenge, this digest.
RFC_SECRET = b"tanstaaftanstaaf"
RFC_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"
RFC_DIGEST = "b913a602c7eda7a495b4e6e7334d3890"

# doveadm pw -p tanstaaftanstaaf -s ...
DOVEADM = {
    "CRAM-MD5": "d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b",
    "SHA512-CRYPT": "$6$4.R6ps3cAb1BwyHL$no92ozAJN.EzlOXAPSFG1LZCelEqCLlXAZ19wuX.4pH2L5xKVs21D24aby"
                    "K4GIMo.jn56SJzaV7xrmHZWV.aW.",
    "SHA256-CRYPT": "$5$nwMtY6z0bbiQiASE$bB9/hZQTMmlyEzh8dDko5DyP6UUkgw2rQ2dJPGZfmK.",
    "BLF-CRYPT": "$2y$05$6zfx6qW.wvg7rQhXmObGR.BKR/.smEluTZnVHDym0nEda4rILk9B6",
    "MD5-CRYPT": "$1$YHHmZPZV$DGrdhDSTT..6t.nXW2ohP0",
}
# doveadm pw -p pässwörd -s ... (UTF-8 passwords)
UTF8_PASSWORD = "pässwörd".encode("utf-8")
DOVEADM_UTF8 = {
    "CRAM-MD5": "4a60bd37924fc5d45b4c92ce695bac86cb234bc3028aab2a71a225cb0dedfbb9",
    "SHA512-CRYPT": "$6$DQ7hfUvCBuQetrUD$AOvzc9wGEaVWdLq7NnGWcjhoLONI3kbzxgtgmPI.JSp3zI10Jf2hK4Og"
                    "vRgJwRHtwAGMZQV5wQWFV9wyfbJv5/",
}
# doveadm pw -s CRAM-MD5 -p <70 x "k">: a key longer than a block is hashed first (RFC 2104).
LONG_KEY = b"k" * 70
LONG_KEY_CONTEXT = "48841cb6af67d6831ff5f85da70033ee0e938840e352117c89783e8f640ea6ac"


def test_cram_md5_context_is_dovecots():
    """The context computed from a password is byte for byte what doveadm stores, long keys included."""
    assert md5context.cram_md5_context(RFC_SECRET) == DOVEADM["CRAM-MD5"]
    assert md5context.cram_md5_context(UTF8_PASSWORD) == DOVEADM_UTF8["CRAM-MD5"]
    assert md5context.cram_md5_context(LONG_KEY) == LONG_KEY_CONTEXT


def test_hmac_from_dovecot_context_gives_the_rfc_2195_digest():
    """Finishing HMAC-MD5 from doveadm's stored context answers RFC 2195's example challenge."""
    assert md5context.hmac_md5_hex(DOVEADM["CRAM-MD5"], RFC_CHALLENGE) == RFC_DIGEST


@pytest.mark.parametrize("length", [0, 1, 55, 56, 63, 64, 65, 119, 120, 200])
def test_hmac_from_context_matches_hmac_module_at_block_edges(length):
    """Around MD5's padding edges (55/56/64 bytes) the resumed HMAC equals Python's hmac for key and text."""
    key, text = bytes(range(length % 256)) * 1, b"t" * length
    context = md5context.cram_md5_context(key)
    assert md5context.hmac_md5_hex(context, text) == hmac.new(key, text, hashlib.md5).hexdigest()


@pytest.mark.parametrize("scheme", sorted(DOVEADM))
def test_doveadm_hashes_accept_their_password_only(scheme):
    """Each Dovecot hash accepts its password and refuses a near miss, an empty one and a NUL."""
    stored = StoredSecret(scheme, DOVEADM[scheme])
    assert stored.matches_password(RFC_SECRET)
    for wrong in (RFC_SECRET + b"x", RFC_SECRET[:-1], b"", b"tanstaaf\x00tanstaaf"):
        assert not stored.matches_password(wrong)


@pytest.mark.parametrize("scheme", sorted(DOVEADM_UTF8))
def test_utf8_passwords_match_as_dovecot_hashed_them(scheme):
    """A non-ASCII password matches Dovecot's hash of its UTF-8 bytes; Latin-1 bytes do not."""
    stored = StoredSecret(scheme, DOVEADM_UTF8[scheme])
    assert stored.matches_password(UTF8_PASSWORD)
    assert not stored.matches_password("pässwörd".encode("latin-1"))


@pytest.mark.parametrize("scheme, mechanisms", [
    ("PLAIN", {PASSWORD, CRAM_MD5, APOP}),
    ("CLEARTEXT", {PASSWORD, CRAM_MD5, APOP}),
    ("CRAM-MD5", {PASSWORD, CRAM_MD5}),
    ("SHA512-CRYPT", {PASSWORD}),
    ("SHA256-CRYPT", {PASSWORD}),
    ("BLF-CRYPT", {PASSWORD}),
    ("MD5-CRYPT", {PASSWORD}),
    ("SSHA512", set()),
])
def test_each_scheme_allows_only_the_mechanisms_it_can_check(scheme, mechanisms):
    """Plaintext allows everything, a CRAM-MD5 context password and CRAM-MD5, crypt hashes only passwords."""
    stored = StoredSecret(scheme, DOVEADM.get(scheme, "tanstaaftanstaaf"))
    assert {m for m in (PASSWORD, CRAM_MD5, APOP) if stored.allows(m)} == mechanisms


@pytest.mark.parametrize("scheme", ["PLAIN", "CRAM-MD5"])
def test_cram_md5_digest_from_plaintext_or_context(scheme):
    """A CRAM-MD5 answer is checked the same whether the secret is stored in plain or as Dovecot's context."""
    value = RFC_SECRET.decode() if scheme == "PLAIN" else DOVEADM["CRAM-MD5"].upper()
    assert StoredSecret(scheme, value).cram_md5_digest(RFC_CHALLENGE) == RFC_DIGEST


def test_crypt_schemes_give_no_cram_md5_digest_and_no_plaintext():
    """A crypt hash cannot answer a challenge and has no plaintext for APOP."""
    stored = StoredSecret("SHA512-CRYPT", DOVEADM["SHA512-CRYPT"])
    assert stored.cram_md5_digest(RFC_CHALLENGE) is None and stored.plaintext() is None


@pytest.mark.parametrize("scheme, value", [
    ("SHA512-CRYPT", DOVEADM["SHA256-CRYPT"]),
    ("BLF-CRYPT", DOVEADM["MD5-CRYPT"]),
    # crypt("tanstaaftanstaaf", "ta"): DES reads 8 characters, so "tanstaaf" gives it too.
    ("CRYPT", "ta2mWiQVruuAQ"),
    ("CRAM-MD5", DOVEADM["CRAM-MD5"][:-1]),
    ("CRAM-MD5", "z" * 64),
])
def test_hash_not_of_its_scheme_never_matches(scheme, value):
    """A hash under the wrong label, a DES crypt (8-character passwords) or a bad context matches nothing."""
    assert not StoredSecret(scheme, value).matches_password(RFC_SECRET)


def test_generic_crypt_takes_any_modern_crypt_hash():
    """{CRYPT} (and a password field without a scheme) verifies whichever $id$ hash the C library knows."""
    assert StoredSecret("CRYPT", DOVEADM["SHA512-CRYPT"]).matches_password(RFC_SECRET)
    assert StoredSecret("CRYPT", DOVEADM["BLF-CRYPT"]).matches_password(RFC_SECRET)


def test_known_schemes():
    """Only schemes this server can check count as known; the others fail closed and are logged."""
    assert all(schemes.known(s) for s in ("PLAIN", "CRAM-MD5", "SHA512-CRYPT", "CRYPT"))
    assert not any(schemes.known(s) for s in ("SSHA512", "ARGON2ID", "PLAIN-MD5"))
