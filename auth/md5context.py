"""HMAC-MD5 from a stored context: the arithmetic behind Dovecot's {CRAM-MD5} scheme.

HMAC-MD5(key, text) = MD5(key^opad || MD5(key^ipad || text)) (RFC 2104). The
first 64-byte block of each MD5 depends on the key alone, so Dovecot stores
the two MD5 states after it (the "context") instead of the password. This
module computes that context from a password and finishes an HMAC from it.

hashlib cannot resume MD5 from a given state, so the MD5 block function
(RFC 1321 §3.4) is written out here; it runs on a handful of blocks per login.
"""

import hashlib
import math
import struct

BLOCK = 64
_MASK = 0xFFFFFFFF
# RFC 1321 §3.3: the initial state A, B, C, D.
_INITIAL = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
# RFC 1321 §3.4: per-step shifts and the sine table T[i].
_SHIFTS = (7, 12, 17, 22) * 4 + (5, 9, 14, 20) * 4 + (4, 11, 16, 23) * 4 + (6, 10, 15, 21) * 4
_SINES = tuple(int(abs(math.sin(i + 1)) * 2 ** 32) & _MASK for i in range(64))


def _rotate_left(value, count):
    return ((value << count) | (value >> (32 - count))) & _MASK


def _round_function(step, b, c, d):
    """F, G, H or I of RFC 1321 and the index of the message word the step uses."""
    if step < 16:
        return (b & c) | (~b & d), step
    if step < 32:
        return (d & b) | (~d & c), (5 * step + 1) % 16
    if step < 48:
        return b ^ c ^ d, (3 * step + 5) % 16
    return c ^ (b | (~d & _MASK)), (7 * step) % 16


def compress(state, block):
    """The MD5 state after one more 64-byte block."""
    words = struct.unpack("<16I", block)
    a, b, c, d = state
    for step in range(64):
        mixed, index = _round_function(step, b, c, d)
        mixed = (mixed + a + _SINES[step] + words[index]) & _MASK
        a, d, c = d, c, b
        b = (b + _rotate_left(mixed, _SHIFTS[step])) & _MASK
    return tuple((x + y) & _MASK for x, y in zip(state, (a, b, c, d)))


def finish(state, data, done):
    """The MD5 digest of a message whose first `done` bytes (whole blocks) led to `state`."""
    length = done + len(data)
    padded = data + b"\x80" + b"\x00" * ((55 - length) % BLOCK) + struct.pack("<Q", length * 8)
    for start in range(0, len(padded), BLOCK):
        state = compress(state, padded[start:start + BLOCK])
    return struct.pack("<4I", *state)


def cram_md5_context(secret):
    """Dovecot's {CRAM-MD5} value for secret: the outer, then the inner state, as 64 hex digits."""
    key = hashlib.md5(secret).digest() if len(secret) > BLOCK else secret
    key = key.ljust(BLOCK, b"\x00")
    inner = compress(_INITIAL, bytes(byte ^ 0x36 for byte in key))
    outer = compress(_INITIAL, bytes(byte ^ 0x5C for byte in key))
    return struct.pack("<8I", *outer, *inner).hex()


def hmac_md5_hex(context, text):
    """HMAC-MD5 of text, in lower-case hex, under the key a cram_md5_context() came from."""
    words = struct.unpack("<8I", bytes.fromhex(context))
    outer, inner = words[:4], words[4:]
    return finish(outer, finish(inner, text, BLOCK), BLOCK).hex()
