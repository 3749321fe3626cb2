"""A Hugging Face model card's ``model-index`` metadata, from a record.

The block follows the model card metadata spec (huggingface/hub-docs ``modelcard.md``; parsed by
huggingface_hub's ``ModelCardData`` / ``model_index_to_eval_results``): one model, one result per
record, ``task: {type, name}``, ``dataset: {name, type, split, revision}``, ``metrics: [{type,
value, name, verified}]``. What goes in:

- ``name``: the submission's entry name (``cnn+lakhani``);
- ``task.type``: the Hub's task id (``image-classification`` or ``image-segmentation``);
- ``dataset.type``: the medbench task (``pneumoniamnist``): its fixed split and hidden labels are
  what the numbers are on, ``dataset.name`` its title, ``split: test``, ``revision``: the SHA-256
  of the task's split file as the record states it;
- ``metrics``: every metric of the record with a value, ``type`` its medbench name, ``name`` the
  task's description of it and the 95 % interval, ``verified: false`` (the Hub sets true only
  for evaluations it ran itself). An undefined metric has no value to give: it is left out, and
  a comment says so.

The text is YAML written here, not by a YAML library (medbench depends on none): block style,
every string double-quoted with escapes, numbers with a decimal point (YAML 1.1 would read
``1e-06`` as a string). Paste it between the ``---`` lines at the top of the model's README.md.
"""

from __future__ import annotations

import re
from typing import Any

from medbench.errors import UnknownNameError
from medbench.exports.source import Source
from medbench.leaderboard.export import DIGITS, rounded
from medbench.metric_specs import lookup

# medbench kind -> (Hub task id, its pretty name) (huggingface.co/tasks)
HUB_TASKS = {
    "binary": ("image-classification", "Image Classification"),
    "multiclass": ("image-classification", "Image Classification"),
    "multilabel-segmentation": ("image-segmentation", "Image Segmentation"),
    "instance-segmentation": ("image-segmentation", "Image Segmentation"),
}


def _description(source: Source, name: str) -> str:
    try:
        return source.spec.metric(name).description
    except KeyError:  # a metric the task no longer reports: the registry's wording
        try:
            return lookup(name, source.kind).spec.description
        except UnknownNameError:
            return name


def _metric(source: Source, name: str, m: dict[str, Any]) -> dict[str, Any]:
    label = _description(source, name)
    low, high = rounded(m.get("ci_low")), rounded(m.get("ci_high"))
    if low is not None and high is not None:
        label += f"; 95 % CI [{number(low)}, {number(high)}]"
    return {"type": name, "value": rounded(m["value"]), "name": label, "verified": False}


def model_index(source: Source) -> tuple[dict[str, Any], list[str]]:
    """The metadata (``{"model-index": [...]}``) and the names of metrics left out (undefined)."""
    record, spec = source.record, source.spec
    defined = [(n, m) for n, m in source.metrics() if rounded(m.get("value")) is not None]
    task_type, task_name = HUB_TASKS[spec.kind]
    result = {
        "task": {"type": task_type, "name": task_name},
        "dataset": {
            "name": spec.title,
            "type": spec.name,
            "split": "test",
            "revision": record["task"].get("split_sha256") or spec.split_sha256,
        },
        "metrics": [_metric(source, n, m) for n, m in defined],
    }
    block = {"model-index": [{"name": record["submission"]["name"], "results": [result]}]}
    left_out = [n for n, _ in source.metrics() if n not in dict(defined)]
    return block, left_out


def render(source: Source) -> str:
    block, left_out = model_index(source)
    r = source.record
    version = r["task"].get("version")
    lines = [
        f"# medbench result {source.stem} (task {r['task']['name']} version "
        f"{version if isinstance(version, int) else '?'}, record_sha256 {r['record_sha256']})",
        "# Hugging Face model card metadata: paste between the --- lines of the model's README.md",
    ]
    if left_out:
        lines.append(f"# undefined on this record, so not listed: {', '.join(left_out)}")
    return "\n".join(lines) + "\n" + yaml_text(block)


# --- a YAML emitter for nested mappings and sequences of scalars ---------------------------------

PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Plain words YAML 1.1 reads as null or booleans (PyYAML's resolver), never written plain.
YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}


def yaml_text(value: dict[str, Any]) -> str:
    """``value`` as block-style YAML (sequences at their key's indent, as the Hub's spec has them)."""
    return "\n".join(_block(value, 0)) + "\n"


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, dict) and v:
                lines += [f"{pad}{_key(k)}:", *_block(v, indent + 2)]
            elif isinstance(v, list) and v:
                lines += [f"{pad}{_key(k)}:", *_block(v, indent)]
            else:
                lines.append(f"{pad}{_key(k)}: {_inline(v)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            inner = _block(item, indent + 2)
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
            else:
                lines.append(f"{pad}- {_inline(item)}")
        return lines
    return [f"{pad}{_inline(value)}"]


def _key(name: str) -> str:
    """A mapping key: plain when YAML can only read it as that string, else quoted."""
    if PLAIN_KEY.fullmatch(name) and name.lower() not in YAML_WORDS:
        return name
    return _quoted(name)


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def scalar(value: Any) -> str:
    """One YAML scalar: null, true/false, an integer, a number with a point, a quoted string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number(value)
    return _quoted(str(value))


def number(value: float) -> str:
    """``0.961221``, ``1e-06`` as ``0.000001``, ``7.0``: the fixed-point text of a rounded value."""
    text = f"{value:.{DIGITS}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _quoted(text: str) -> str:
    """A double-quoted YAML string: printable ASCII as is, everything else escaped (so that no
    character YAML treats as a line break or as non-printable is written raw)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'
