"""Debian packages a test needs (Chromium, LibreOffice, promtool, PgBouncer), installed when missing.

On a fresh machine the test installs them itself (root with apt-get), so the suite needs no manual step;
without root or apt-get the caller skips with the reason returned here.
"""

import os
import shutil
import subprocess


def ensure(package, *, binary, path=None):
    """(path of `binary`, None) once `package` is installed, else (None, why not)."""

    def found():
        if path:
            return path if os.path.exists(path) else None
        return shutil.which(binary)

    if found():
        return found(), None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, f"{package} is not installed and this user cannot apt-get install it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True, timeout=600)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if result.returncode != 0 or not found():
        return None, f"apt-get install {package} failed: {result.stderr[-500:]}"
    return found(), None
