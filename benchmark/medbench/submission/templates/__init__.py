"""Starting points for new submissions (``medbench new NAME --template torch|sklearn``).

Each template is a folder here (``submission.toml``, ``model.py``, ``README.md``) whose text
holds ``{{name}}`` placeholders; :func:`render_template` copies it with the name filled in.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from medbench.errors import SubmissionError, UnknownNameError
from medbench.registry import closest_names

HERE = Path(__file__).parent
PLACEHOLDER = "{{name}}"
TEMPLATES = {
    "torch": "a small CNN or U-Net by task kind, trained by medbench's standard PyTorch trainer",
    "sklearn": "logistic regression on downsampled pixels, for classification tasks",
}


def template_files(template: str) -> list[Path]:
    """The files of ``template``, relative to its folder."""
    if template not in TEMPLATES:
        names = sorted(TEMPLATES)
        near = closest_names(template, names)
        hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise UnknownNameError(
            f"unknown submission template {template!r}{hint} (known: {', '.join(names)})"
        )
    root = HERE / template
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def render_template(template: str, name: str, dest: Path) -> list[Path]:
    """Write ``template`` to the new folder ``dest`` with ``{{name}}`` replaced; return the files.

    Refuses an existing ``dest`` and a name the manifest would refuse. The folder appears whole
    or not at all (written next to ``dest``, then renamed).
    """
    files = template_files(template)
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise SubmissionError(
            f"submission name {name!r} may hold only letters, digits, '-', '_', '.'"
        )
    dest = Path(dest)
    if dest.exists():
        raise SubmissionError(f"{dest} already exists; choose another name or remove it first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for rel in files:
            text = (HERE / template / rel).read_text(encoding="utf-8")
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text.replace(PLACEHOLDER, name), encoding="utf-8")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [dest / rel for rel in files]
