"""TLS for implicit-TLS ports and STARTTLS/STLS; imported only when TLS is used.

The certificate is read per connection (each connection is a new process),
so a renewed certificate needs no restart.
"""

import ssl


def server_context(config):
    """A server-side SSLContext: TLS 1.2 or newer, the library's secure ciphers."""
    if not config.ssl_cert_file:
        raise ssl.SSLError("no ssl_cert_file configured")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(config.ssl_cert_file, config.ssl_key_file or None)
    return context
