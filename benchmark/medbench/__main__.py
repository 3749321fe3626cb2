"""``python -m medbench``: the command line without the console script on PATH."""

from medbench.cli import app

app(prog_name="medbench")
