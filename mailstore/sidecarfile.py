"""Writing the project's own sidecar files (index, field cache) atomically.

A sidecar is written to `<path>.<pid>.tmp` and renamed over the old one, so
a reader sees the old file or the new one, never half of either.  A process
killed before its rename leaves its temporary file behind; the next writer
removes those whose process is gone.
"""

import os


def write_replacing(path, data):
    """Replace the file at path by data (bytes, or a function that writes to a file
    object); False (nothing changed) if it cannot be written."""
    _remove_orphans(path)
    temporary = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(temporary, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
        os.replace(temporary, path)
        return True
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False


def _remove_orphans(path):
    """Unlink `<path>.<pid>.tmp` files left by processes that no longer exist."""
    directory, base = os.path.split(path)
    prefix = base + "."
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):-len(".tmp")]
        if name.startswith(prefix) and name.endswith(".tmp") and pid.isdigit() \
                and not _alive(int(pid)):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive under another uid (EPERM)
    return True
