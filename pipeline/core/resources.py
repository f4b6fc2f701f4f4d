"""Files shipped inside the package (``pipeline/resources/``), found the same way in a checkout,
an editable install and a wheel installed on a pool node."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def shipped_dir(name: str, override_env: str | None = None) -> Path:
    """The shipped directory ``name`` (``config``, ``workflows``), or ``$override_env`` when set."""
    if override_env and os.environ.get(override_env):
        return Path(os.environ[override_env])
    root = files("pipeline.resources") / name
    # Wheels install unzipped, so the traversable is a real directory; say so plainly if not.
    if not isinstance(root, Path):
        raise RuntimeError(f"owlpipe's shipped {name}/ is not on a file system ({root!r}): install unzipped")
    return root
