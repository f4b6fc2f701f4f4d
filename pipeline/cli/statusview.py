"""The OSF grid in a terminal: a colour per letter (the letter itself always shown), per-stage counts."""

from __future__ import annotations

from pipeline.core.osf import COLUMN_STAGES, COLUMNS, LETTERS
from pipeline.core.status import Grid

#: Rich style per OSF letter.
STYLES = {"_": "grey50", "w": "yellow", "p": "bold cyan", "c": "green", "e": "bold red", "x": "bold magenta",
          "n": "grey35", "h": "bold black on yellow"}


def render(grid_: Grid, console, *, title: str = "") -> None:
    """Print the grid and the per-stage counts with rich."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None, box=None, pad_edge=False, header_style="bold")
    table.add_column("dataset", no_wrap=True)
    table.add_column("id")
    table.add_column("workflow", no_wrap=True)
    for col in COLUMNS:
        table.add_column(col, justify="center")
    for e in grid_.rows:
        name = f"  {e.dataset}" if e.parent else e.dataset
        letters = [Text(ch, style=STYLES.get(ch, "")) for ch in e.status]
        table.add_row(name, e.data_id, e.workflow or "-", *letters)
    console.print(table)
    shown = f"{grid_.offset + 1}-{grid_.offset + len(grid_.rows)}" if grid_.rows else "none"
    console.print(f"[dim]{grid_.total} dataset(s); showing {shown}[/dim]")
    counts = Table(title="per-stage counts", box=None, header_style="bold", title_justify="left")
    counts.add_column("letter")
    for col in COLUMNS:
        counts.add_column(col, justify="right")
    present = [ch for ch in LETTERS if any(ch in grid_.counts[c] for c in COLUMNS)]
    for ch in present:
        counts.add_row(Text(f"{ch} {LETTERS[ch].split(' (')[0]}", style=STYLES[ch]),
                       *[str(grid_.counts[c].get(ch, "")) for c in COLUMNS])
    console.print(counts)
    console.print("[dim]" + "  ".join(f"{c}={s}" for c, s in COLUMN_STAGES.items()) + "[/dim]")
