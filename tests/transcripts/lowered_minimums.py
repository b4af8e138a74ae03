"""Run ipop3d or imapd with the RFC minimum timeouts lowered to zero: for tests only.

`python lowered_minimums.py ipop3d|imapd --config FILE` lets a test watch an
after-login timeout fire within a second, instead of the 10 or 30 minutes a
real server must wait (RFC 1939, RFC 3501, RFC 2177). Only the floors of
server.config.MINIMUMS change; the server code that times out is the shipped one.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from server import config  # noqa: E402  (needs the path above)


def main():
    for name, (_, source) in config.MINIMUMS.items():
        config.MINIMUMS[name] = (0, source)
    program = sys.argv.pop(1)
    if program == "ipop3d":
        import ipop3d as server
    else:
        import imapd as server
    return server.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
