"""imapd(8) and ipop3d(8) document every configuration setting, with the default the code has.

The pages are formatted by groff as `man` would (no hyphenation, a wide line,
no bold or underline), and their CONFIGURATION section is split into its
entries: a tag line (one or more setting names) and the indented text under
it. Each name in server.config.SETTINGS must head an entry whose text says
`Default: VALUE`, VALUE written as deploy/make_config.py writes it into
/etc/pyimapd.conf; and each name a tag gives must be a setting.
"""

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from server.config import SETTINGS

REPO = Path(__file__).resolve().parents[2]
MAN_PAGES = ("imapd.8", "ipop3d.8")
SETTING_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TAG_INDENT, TEXT_INDENT = 7, 14
# A guard against a hung groff, never a measurement.
GUARD_SECONDS = 60

pytestmark = pytest.mark.skipif(shutil.which("groff") is None,
                                reason="groff is not installed (apt-get install groff-base)")


def config_value(default):
    """A default as the installed /etc/pyimapd.conf spells it (deploy/make_config.py)."""
    spec = importlib.util.spec_from_file_location("make_config", REPO / "deploy" / "make_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.config_value(default) or "empty"


def rendered(page):
    """The page as plain text lines: man macros, no hyphenation, 300-column lines, no overstriking."""
    result = subprocess.run(["groff", "-man", "-Tascii", "-rHY=0", "-rLL=300n", "-P", "-cbou",
                             str(REPO / "man" / page)],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=GUARD_SECONDS)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def indent(line):
    return len(line) - len(line.lstrip(" "))


def configuration_entries(page):
    """{setting name: the text of its entry} from the CONFIGURATION section of a page."""
    lines = rendered(page)
    start = lines.index("CONFIGURATION") + 1
    end = next(n for n in range(start, len(lines)) if lines[n] and not lines[n].startswith(" "))
    entries, names = {}, None
    for line in lines[start:end]:
        if not line.strip():
            continue
        if indent(line) == TAG_INDENT:
            words = [word.strip(",") for word in line.split()]
            names = words if all(SETTING_NAME.match(word) for word in words) else None
            for name in names or ():
                entries[name] = ""
        elif names and indent(line) >= TEXT_INDENT:
            for name in names:
                entries[name] += " " + line.strip()
    return {name: " ".join(text.split()) for name, text in entries.items()}


@pytest.mark.parametrize("page", MAN_PAGES)
def test_every_setting_has_an_entry_and_every_entry_is_a_setting(page):
    """The page's CONFIGURATION section has an entry for each setting of server/config.py, and no other."""
    documented = set(configuration_entries(page))
    assert sorted(set(SETTINGS) - documented) == [], "settings missing from man/%s" % page
    assert sorted(documented - set(SETTINGS)) == [], "man/%s documents unknown settings" % page


@pytest.mark.parametrize("page", MAN_PAGES)
def test_every_entry_states_the_default_the_code_has(page):
    """Each setting's entry says `Default: VALUE` with the value /etc/pyimapd.conf shows for it."""
    entries = configuration_entries(page)
    wrong = {}
    for name, (_convert, default) in SETTINGS.items():
        value = config_value(default)
        if not re.search(r"Default: %s(?=[.,;)]| |$)" % re.escape(value), entries.get(name, "")):
            wrong[name] = (value, entries.get(name))
    assert wrong == {}, "man/%s: entries without the right `Default:`" % page
