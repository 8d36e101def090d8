"""Files a command hands to a terminal user (audit exports, endpoint exports), saved privately.

An audit export is the whole who-did-what of the installation: it is written readable by its
owner only (0600, in a 0700 folder), whatever the umask, and never through a symlink.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelarium.bot.reply import Attachment


def save_attachment(folder: Path, attachment: Attachment) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / Path(attachment.filename).name
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(attachment.content)
    finally:
        if fd >= 0:
            os.close(fd)
    return path
