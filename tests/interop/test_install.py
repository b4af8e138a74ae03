"""deploy/install.sh and deploy/uninstall.sh, run with --root into a temporary tree.

Nothing here touches the real /etc: every install goes under a fresh directory
(DESTDIR style), and the venv is built there by /usr/bin/python3 with pip. One
install is shared by the tests that only look at what it produced; the tests of
re-installing and uninstalling make their own, with --wheel-dir pointing at
wheels downloaded once, which also exercises the offline option.
"""

import configparser
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from server import config as server_config

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
UNINSTALL = REPO / "deploy" / "uninstall.sh"
PREFIX = "opt/pyimapd"
SYSTEMD_DIR = "usr/local/lib/systemd/system"
MAN_DIR = "usr/local/share/man/man8"
NOWAIT_XINETD_SERVICES = ("imap", "imaps", "ipop3", "pop3s")
XINETD_SERVICES = NOWAIT_XINETD_SERVICES + tuple(name + "-wait" for name in NOWAIT_XINETD_SERVICES)
# unit name -> (port, program, arguments)
SOCKET_UNITS = {"imap": (143, "imapd", []), "imaps": (993, "imapd", ["--tls"]),
                "pop3": (110, "ipop3d", []), "pop3s": (995, "ipop3d", ["--tls"])}
UNITS = ([name + suffix for name in SOCKET_UNITS for suffix in (".socket", "@.service")]
         + [name + suffix for name in SOCKET_UNITS for suffix in ("-wait.socket", "-wait.service")])
MAN_PAGES = ("imapd.8", "ipop3d.8")
# The admin tool's page: no server sections (SYSLOG, --tls), checked with man -l only.
TOOL_MAN_PAGES = ("pyimapd-mailutil.8",)
CREATED_IF_ABSENT = ("etc/pyimapd.conf", "etc/pam.d/imap", "etc/pam.d/pop")
INSTALLED_FILES = (list(CREATED_IF_ABSENT)
                   + ["etc/xinetd.d/" + name for name in XINETD_SERVICES]
                   + [SYSTEMD_DIR + "/" + unit for unit in UNITS]
                   + [MAN_DIR + "/" + page for page in MAN_PAGES + TOOL_MAN_PAGES]
                   + [PREFIX + "/bin/imapd", PREFIX + "/bin/ipop3d"])
# A guard against a hung pip, never a measurement.
GUARD_SECONDS = 300


def run_script(script, root, *options):
    """Run install.sh or uninstall.sh with --root; fail with its output unless it succeeds."""
    result = subprocess.run(["bash", str(script), "--root", str(root), *options], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=GUARD_SECONDS)
    assert result.returncode == 0, "%s exited %d\n%s\n%s" % (script.name, result.returncode,
                                                             result.stdout, result.stderr)
    return result.stdout


def files_under(root):
    """Every file and symbolic link under root, as paths relative to it."""
    return {str(path.relative_to(root)) for path in root.rglob("*") if not path.is_dir() or path.is_symlink()}


def disable_value(path):
    """The value of `disable` in an xinetd service file."""
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == "disable":
            return value.strip()
    return None


def load_make_config():
    """deploy/make_config.py as a module (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_config", REPO / "deploy" / "make_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_of(config):
    """The values of every setting of a Config."""
    return {name: getattr(config, name) for name in server_config.SETTINGS}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One tree made by `install.sh --root DIR` with the defaults (PyPI for the dependencies)."""
    root = tmp_path_factory.mktemp("installed")
    run_script(INSTALL, root)
    return root


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory):
    """The dependencies and build tools as wheels, for installs with --wheel-dir (no index used)."""
    directory = tmp_path_factory.mktemp("wheels")
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                             "-d", str(directory), "python-pam", "filelock", "setuptools", "wheel"],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=GUARD_SECONDS)
    assert result.returncode == 0, "pip download failed:\n%s" % result.stderr
    return directory


@pytest.fixture
def fresh_root(tmp_path):
    """An empty directory to install into."""
    root = tmp_path / "root"
    root.mkdir()
    return root


# -- what one install produces ---------------------------------------------------


def test_install_puts_every_file_in_place(installed):
    """install.sh creates the config, PAM services, xinetd files, units, man pages and the three programs."""
    missing = [name for name in INSTALLED_FILES if not (installed / name).is_file()]
    assert missing == []
    for program in ("imapd", "ipop3d", "pyimapd-mailutil"):
        assert os.access(installed / PREFIX / "bin" / program, os.X_OK)
    assert (installed / PREFIX / "pyvenv.cfg").is_file()
    for name in INSTALLED_FILES[:-2]:
        assert (installed / name).stat().st_mode & 0o777 == 0o644, name


def test_installed_config_shows_every_setting_commented_out_with_its_default(installed):
    """/etc/pyimapd.conf names every setting in order, commented out, each with its default and a meaning."""
    text = (installed / "etc/pyimapd.conf").read_text()
    defaults = settings_of(server_config.Config())
    assert settings_of(server_config.parse(text)) == defaults
    lines = text.splitlines()
    settings = [line[1:].partition(" =")[0] for line in lines
                if line.startswith("#") and " =" in line and not line.startswith("# ")]
    assert settings == list(server_config.SETTINGS)
    for index, line in enumerate(lines):
        if line[1:].partition(" =")[0] in server_config.SETTINGS:
            assert lines[index - 1].startswith("# ") and len(lines[index - 1]) > 10, line
    uncommented = "\n".join(line[1:] if line[1:].partition(" =")[0] in server_config.SETTINGS else line
                            for line in lines)
    assert settings_of(server_config.parse(uncommented)) == defaults


def test_config_generator_refuses_to_drift_from_the_settings():
    """make_config.py fails when a setting lacks a description or a description lacks a setting."""
    make_config = load_make_config()
    with pytest.raises(ValueError, match="new_setting"):
        make_config.render({**server_config.SETTINGS, "new_setting": (str, "")})
    fewer = dict(server_config.SETTINGS)
    removed = fewer.popitem()[0]
    with pytest.raises(ValueError, match=removed):
        make_config.render(fewer)


def test_fresh_install_has_the_shipped_xinetd_files_disabled(installed):
    """On a host without them, the xinetd files arrive exactly as shipped: disable = yes."""
    for name in XINETD_SERVICES:
        installed_text = (installed / "etc/xinetd.d" / name).read_text()
        assert installed_text == (REPO / "xinetd.d" / name).read_text()
        assert disable_value(installed / "etc/xinetd.d" / name) == "yes"


def read_unit(path):
    """A systemd unit file as {section: {key: value}}."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return {section: dict(parser[section]) for section in parser.sections()}


def test_installed_units_accept_one_connection_per_server_process(installed):
    """Each .socket listens on its port with Accept=yes; its @.service runs the installed program on the socket."""
    for name, (port, program, arguments) in SOCKET_UNITS.items():
        socket_unit = read_unit(installed / SYSTEMD_DIR / (name + ".socket"))
        assert socket_unit["Socket"]["ListenStream"] == str(port)
        assert socket_unit["Socket"]["Accept"] == "yes"
        assert socket_unit["Install"]["WantedBy"] == "sockets.target"
        service = read_unit(installed / SYSTEMD_DIR / (name + "@.service"))["Service"]
        assert service["ExecStart"].split() == ["/" + PREFIX + "/bin/" + program] + arguments
        assert os.access(installed / PREFIX / "bin" / program, os.X_OK)
        assert (service["StandardInput"], service["StandardOutput"]) == ("socket", "socket")
        assert service["StandardError"] == "journal"  # never the socket: nothing may leak to the client


def test_installed_wait_units_hand_the_listening_socket_to_one_server(installed):
    """Each -wait.socket listens with Accept=no beside its Accept=yes twin; its service keeps sessions on stop."""
    for name, (port, program, arguments) in SOCKET_UNITS.items():
        socket_unit = read_unit(installed / SYSTEMD_DIR / (name + "-wait.socket"))
        assert socket_unit["Socket"]["ListenStream"] == str(port)
        assert socket_unit["Socket"]["Accept"] == "no"
        assert socket_unit["Unit"]["Conflicts"] == name + ".socket"
        assert socket_unit["Install"]["WantedBy"] == "sockets.target"
        service = read_unit(installed / SYSTEMD_DIR / (name + "-wait.service"))["Service"]
        assert service["ExecStart"].split() == ["/" + PREFIX + "/bin/" + program] + arguments
        assert "StandardInput" not in service and "StandardOutput" not in service  # the socket is fd 3
        assert service["StandardError"] == "journal"
        assert service["KillMode"] == "process"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install systemd)")
def test_installed_units_pass_systemd_analyze_verify(installed, tmp_path):
    """systemd-analyze verify accepts every unit, finding the installed programs and man pages."""
    for unit in UNITS:
        text = (installed / SYSTEMD_DIR / unit).read_text()
        (tmp_path / unit).write_text(text.replace("/" + PREFIX + "/", "%s/%s/" % (installed, PREFIX)))
    result = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / unit) for unit in UNITS)],
                            capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL,
                            env={**os.environ, "MANPATH": str(installed / "usr/local/share/man")},
                            timeout=GUARD_SECONDS)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed (apt-get install groff-base)")
@pytest.mark.parametrize("page", MAN_PAGES)
def test_installed_man_page_formats_without_warnings(installed, page):
    """groff -man -ww formats the page without a warning, and it has the sections an admin looks for."""
    path = installed / MAN_DIR / page
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(path)], capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=GUARD_SECONDS)
    assert (result.returncode, result.stderr) == (0, b"")
    text = path.read_text()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION", "FILES", "SYSLOG",
                    '"EXIT STATUS"', '"SEE ALSO"'):
        assert "\n.SH %s\n" % section in text, section
    for option in (r"\-\-config", r"\-\-tls"):
        assert option in text


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed (apt-get install man-db)")
@pytest.mark.parametrize("page", MAN_PAGES + TOOL_MAN_PAGES)
def test_installed_man_page_reads_with_man_l(installed, page):
    """`man --warnings -l` renders the page with no warning and shows its name line."""
    result = subprocess.run(["man", "--warnings", "-l", str(installed / MAN_DIR / page)],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=GUARD_SECONDS,
                            env={**os.environ, "MANWIDTH": "80"})
    assert (result.returncode, result.stderr) == (0, "")
    assert re.search(r"^NAME\n +%s +- +\S" % page.split(".")[0], result.stdout, re.M)


def greeting_and_goodbye(program, config_path, goodbye, cwd):
    """Run an installed server on a socket pair as inetd would; return its greeting and the rest."""
    client_end, server_end = socket.socketpair()
    with server_end:
        process = subprocess.Popen([str(program), "--config", str(config_path)], stdin=server_end,
                                   stdout=server_end, cwd=cwd)
    with client_end, client_end.makefile("rb") as replies:
        greeting = replies.readline()
        client_end.sendall(goodbye)
        rest = replies.read()
    assert process.wait(timeout=GUARD_SECONDS) == 0
    return greeting, rest


def test_installed_servers_run_from_the_prefix(installed):
    """bin/imapd and bin/ipop3d greet and sign off with the installed config, importing the prefix's copy."""
    bin_dir, config_path = installed / PREFIX / "bin", installed / "etc/pyimapd.conf"
    greeting, rest = greeting_and_goodbye(bin_dir / "imapd", config_path, b"a LOGOUT\r\n", installed)
    assert greeting.startswith(b"* OK ") and rest.endswith(b"a OK LOGOUT completed\r\n")
    greeting, rest = greeting_and_goodbye(bin_dir / "ipop3d", config_path, b"QUIT\r\n", installed)
    assert greeting.startswith(b"+OK ") and rest.startswith(b"+OK ")
    found = subprocess.run([str(bin_dir / "python"), "-I", "-c", "import imapd, server; print(imapd.__file__)"],
                           capture_output=True, text=True, cwd=installed, timeout=GUARD_SECONDS)
    assert found.stdout.startswith(str(installed / PREFIX) + "/"), found.stdout + found.stderr


# -- installing again and uninstalling ---------------------------------------------


def test_second_install_keeps_local_configuration(fresh_root, wheel_dir):
    """Re-running install keeps an edited pyimapd.conf and PAM file and each xinetd `disable` as set."""
    run_script(INSTALL, fresh_root, "--wheel-dir", str(wheel_dir))
    config_path, pam_path = fresh_root / "etc/pyimapd.conf", fresh_root / "etc/pam.d/imap"
    config_path.write_text(config_path.read_text().replace("#login_greeting =", "login_greeting = Local"))
    pam_path.write_text(pam_path.read_text() + "# local rule\n")
    imaps = fresh_root / "etc/xinetd.d/imaps"
    imaps.write_text(imaps.read_text().replace("= yes", "= no"))  # what `chkconfig imaps on` does
    edited_config, edited_pam = config_path.read_text(), pam_path.read_text()

    output = run_script(INSTALL, fresh_root, "--wheel-dir", str(wheel_dir))
    assert "kept /etc/pyimapd.conf" in output
    assert (config_path.read_text(), pam_path.read_text()) == (edited_config, edited_pam)
    assert {name: disable_value(fresh_root / "etc/xinetd.d" / name) for name in XINETD_SERVICES} == {
        **{name: "yes" for name in XINETD_SERVICES}, "imaps": "no"}
    assert os.access(fresh_root / PREFIX / "bin/imapd", os.X_OK)


def test_install_with_prefix_and_uninstall_leave_nothing(fresh_root, wheel_dir):
    """With --prefix the service files name that prefix; uninstall then removes every file install added."""
    prefix = "/srv/pyimapd"
    run_script(INSTALL, fresh_root, "--prefix", prefix, "--wheel-dir", str(wheel_dir))
    assert "server\t\t= %s/bin/imapd\n" % prefix in (fresh_root / "etc/xinetd.d/imaps").read_text()
    service = read_unit(fresh_root / SYSTEMD_DIR / "pop3s@.service")["Service"]
    assert service["ExecStart"] == prefix + "/bin/ipop3d --tls"
    assert os.access(fresh_root / prefix.lstrip("/") / "bin/ipop3d", os.X_OK)

    run_script(UNINSTALL, fresh_root, "--prefix", prefix)
    assert files_under(fresh_root) == set()


def test_uninstall_keeps_an_edited_config(fresh_root, wheel_dir):
    """An edited /etc/pyimapd.conf is local configuration: uninstall keeps it and removes the rest."""
    run_script(INSTALL, fresh_root, "--wheel-dir", str(wheel_dir))
    config_path = fresh_root / "etc/pyimapd.conf"
    config_path.write_text(config_path.read_text() + "login_greeting = Local\n")
    edited = config_path.read_text()

    output = run_script(UNINSTALL, fresh_root)
    assert "kept /etc/pyimapd.conf" in output
    assert files_under(fresh_root) == {"etc/pyimapd.conf"}
    assert config_path.read_text() == edited


UW_XINETD_IMAP = """\
service imap
{
        disable     = no
        socket_type = stream
        wait        = no
        user        = root
        server      = /usr/sbin/imapd
}
"""


def test_files_install_did_not_create_survive_uninstall(fresh_root, wheel_dir):
    """A PAM file that existed stays untouched; another server's xinetd file is set aside and restored."""
    pam_path, xinetd_path = fresh_root / "etc/pam.d/imap", fresh_root / "etc/xinetd.d/imap"
    pam_path.parent.mkdir(parents=True)
    xinetd_path.parent.mkdir(parents=True)
    pam_path.write_text("auth required pam_unix.so\naccount required pam_unix.so\n")
    xinetd_path.write_text(UW_XINETD_IMAP)

    run_script(INSTALL, fresh_root, "--wheel-dir", str(wheel_dir))
    assert pam_path.read_text().startswith("auth required pam_unix.so\n")
    assert "/" + PREFIX + "/bin/imapd" in xinetd_path.read_text()
    assert disable_value(xinetd_path) == "no"  # the administrator had it on
    set_aside = xinetd_path.with_name("imap.pyimapd-orig")  # a dot: xinetd's includedir skips it
    assert set_aside.read_text() == UW_XINETD_IMAP

    run_script(UNINSTALL, fresh_root)
    assert files_under(fresh_root) == {"etc/pam.d/imap", "etc/xinetd.d/imap"}
    assert pam_path.read_text().startswith("auth required pam_unix.so\n")
    assert xinetd_path.read_text() == UW_XINETD_IMAP
