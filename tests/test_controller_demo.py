"""``owl demo`` guards: it replaces only a directory it created itself."""

from __future__ import annotations

import click
import pytest

from pipeline.cli.demo import MARKER, _fresh_site


def test_demo_site_is_created_and_replaced_but_nothing_else(tmp_path):
    said = []
    root = _fresh_site(tmp_path / "owl-demo", said.append)
    assert (root / MARKER).exists() and (root / "owl.toml").exists()
    (root / "inbox" / "old.dan.json").write_text("{}")
    again = _fresh_site(tmp_path / "owl-demo", said.append)
    assert again == root and not (root / "inbox" / "old.dan.json").exists()
    assert said == [f"replacing the previous demo site in {root}"]
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(click.ClickException, match="is not an owl demo site"):
        _fresh_site(precious, said.append)
    assert (precious / "notes.txt").read_text() == "keep me"
