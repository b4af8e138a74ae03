"""`python3 -m admin`: the same as the pyimapd-mailutil command."""

import sys

from admin.cli import main

sys.exit(main())
