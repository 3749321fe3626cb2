"""Result records in other tools' formats: ``medbench export RECORD... --format FMT``.

One record (one run) becomes one file, ``<task>.<submission>.seed<N>.<suffix>``, whose bytes
depend only on the record. Unlike ``medbench leaderboard --format csv|json`` (a whole board), an
export is of single runs, for publishing them where other tools read results:

- ``gc``: Grand Challenge's ``metrics.json`` (:mod:`medbench.exports.gc`);
- ``nnunet``: nnU-Net v2's ``summary.json``, segmentation only (:mod:`medbench.exports.nnunet`);
- ``model-index``: a Hugging Face model card's metadata (:mod:`medbench.exports.model_index`);
- ``csv``: one row per test case, MedMNIST-style (:mod:`medbench.exports.cases_csv`).

Every record is read, checked and rendered before any file is written: a bad record (tampered,
failed, of the wrong kind for the format) is one error naming it, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medbench.data.files import write_text_atomic
from medbench.errors import ExportError
from medbench.exports import cases_csv, gc, model_index, nnunet
from medbench.exports.source import Source, load_source, record_files
from medbench.registry import Registry
from medbench.tasks.spec import KINDS


@dataclass(frozen=True)
class Format:
    """An export format: its file suffix, the task kinds it takes, and its renderer."""

    name: str
    suffix: str
    kinds: tuple[str, ...]
    render: Callable[[Source], str]


FORMATS: Registry[Format] = Registry("export format")
for _format in (
    Format("gc", ".metrics.json", KINDS, gc.render),
    Format("nnunet", ".summary.json", nnunet.KINDS, nnunet.render),
    Format("model-index", ".model-index.yaml", KINDS, model_index.render),
    Format("csv", ".csv", KINDS, cases_csv.render),
):
    FORMATS.add(_format.name, _format)


def render_exports(paths: list[Path], format: str) -> dict[str, str]:
    """File name -> text of every record in ``paths`` (files, or folders of them) in ``format``."""
    fmt = FORMATS.get(format)
    out: dict[str, tuple[Path, str]] = {}
    for path in record_files(paths):
        source = load_source(path)
        if source.kind not in fmt.kinds:
            raise ExportError(
                f"--format {fmt.name} takes records of {' or '.join(fmt.kinds)} tasks; {path} "
                f"is of {source.spec.name}, a {source.kind} task"
            )
        name = source.stem + fmt.suffix
        if name in out:
            raise ExportError(f"{out[name][0]} and {path} would both be exported as {name}")
        out[name] = (path, fmt.render(source))
    return {name: text for name, (_, text) in out.items()}


def export(paths: list[Path], format: str, out: Path) -> list[Path]:
    """Write ``paths``' records in ``format`` into the folder ``out``; return the files written."""
    files = render_exports(paths, format)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        write_text_atomic(out / name, text)
        written.append(out / name)
    return written


__all__ = ["FORMATS", "Format", "Source", "export", "load_source", "render_exports"]
