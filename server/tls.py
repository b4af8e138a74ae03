"""TLS for implicit-TLS ports and STARTTLS/STLS; imported only when TLS is used.

The certificate is read per connection (each connection is a new process),
so a renewed certificate needs no restart.
"""

import ssl

# TLS 1.2 suites, best first: forward secrecy always (ECDHE or DHE key
# exchange, so no static-RSA kRSA suites), AEAD (AES-GCM, ChaCha20-Poly1305)
# before AES-CBC, which stays only for old TLS 1.2 clients. NULL, EXPORT, RC4,
# 3DES, DES, MD5, PSK and SRP cannot match the list; the exclusions say so
# anyway. SECLEVEL=2 refuses keys under 2048 bits (RSA) or 224 bits (EC).
# TLS 1.3 suites are all AEAD and are OpenSSL's own.
CIPHERS = ("@SECLEVEL=2:ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:ECDHE+AES:DHE+AES"
           ":!aNULL:!eNULL:!EXPORT:!RC4:!3DES:!DES:!MD5:!PSK:!SRP:!DSS:!AESCCM")


def server_context(config):
    """A server-side SSLContext: TLS 1.2 or newer, forward-secret ciphers, certificate read now."""
    if not config.ssl_cert_file:
        raise ssl.SSLError("no ssl_cert_file configured")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    # No renegotiation (a client could make the server redo expensive
    # handshakes), no compression (CRIME). No session tickets: each connection
    # is a new process with a new ticket key, so a ticket could never be used.
    context.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
                        | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET)
    context.num_tickets = 0
    context.load_cert_chain(config.ssl_cert_file, config.ssl_key_file or None)
    return context
