"""Reading and validating predictions, the way Kaggle checks an uploaded file before scoring it.

Predictions arrive keyed by case id: a CSV (``case_id,score`` for binary; ``case_id,p0..pK-1``
for multiclass) or an NPZ with one array per case id (any task kind). :func:`validate` turns them
into arrays in the truth's case order, or raises a :class:`PredictionError` that names the
problem. Nothing is scored partially.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medbench.errors import PredictionError

if TYPE_CHECKING:  # the sandboxed child imports this module for to_npz_dict: keep it light
    from medbench.tasks.spec import TaskSpec

# Probabilities are compared with this slack: float16 masks and float32 softmax rows round.
_PROB_TOL = 1e-3


def _first(items: Sequence[str], n: int = 5) -> str:
    items = list(items)
    more = f" (and {len(items) - n} more)" if len(items) > n else ""
    return ", ".join(repr(i) for i in items[:n]) + more


def read_predictions(
    path: str | Path,
    spec: TaskSpec,
    *,
    n_cases: int | None = None,
    shapes: Sequence[tuple[int, ...]] | None = None,
) -> dict[str, np.ndarray]:
    """Read a predictions file into ``{case_id: array}``.

    An NPZ is checked before anything is decompressed: at most ``n_cases`` members (when given),
    each an ``.npy`` array of numbers declaring at most twice the elements one case of ``spec``
    has (``shapes``: the per-case sizes of native-size tasks), and no more bytes than it declares.
    So a deflate bomb or an archive of 70,000 members is refused at once, whatever it holds.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"predictions file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        most = _max_elements(spec, shapes)
        # Twice the largest case (and a floor): enough to bound memory, while a prediction of the
        # wrong shape still reaches validate(), whose message names the shape expected.
        return _read_npz(path, n_cases, None if most is None else max(2 * most, 1024))
    if suffix == ".csv":
        if spec.kind not in ("binary", "multiclass"):
            raise PredictionError(
                f"task {spec.name!r} ({spec.kind}) takes an NPZ of arrays keyed by case id, not a CSV"
            )
        return _read_csv(path, spec)
    raise PredictionError(
        f"predictions file {path} must be .csv or .npz; got {suffix or 'no suffix'!r}"
    )


def _max_elements(spec: TaskSpec, shapes: Sequence[tuple[int, ...]] | None) -> int | None:
    """The most elements one case's prediction may have (None: no bound is known)."""
    if spec.kind == "binary":
        return 1
    if spec.kind == "multiclass":
        return len(spec.classes)
    if spec.kind == "multilabel-segmentation" and spec.input.size is not None:
        return len(spec.classes) * spec.input.size[0] * spec.input.size[1]
    if shapes:
        return max(int(np.prod(s)) for s in shapes)
    return None


# What a damaged or hostile NPZ can raise on reading: zipfile's errors (a bad CRC, an unknown
# compression method, an encrypted member), zlib's, numpy's header checks, and an array header
# that declares more memory than there is.
_NPZ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    MemoryError,
    SyntaxError,  # numpy parses the header's dict literal
)


def _read_npz(path: Path, n_cases: int | None, max_elements: int | None) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if n_cases is not None and len(members) > n_cases:
                raise PredictionError(
                    f"{path} holds {len(members)} arrays; there are only {n_cases} cases to predict"
                )
            seen: set[str] = set()
            dupes: list[str] = []
            for info in members:
                name = info.filename
                if not name.endswith(".npy"):
                    raise PredictionError(f"{path}: member {name!r} is not an .npy array")
                key = name[: -len(".npy")]
                if key in seen:
                    dupes.append(key)
                seen.add(key)
            if dupes:  # a zip may hold one name twice; reading would silently keep the last
                raise PredictionError(f"{path}: case ids listed more than once: {_first(dupes)}")
            return {
                info.filename[: -len(".npy")]: _read_member(archive, info, path, max_elements)
                for info in members
            }
    except PredictionError:
        raise
    except _NPZ_ERRORS as exc:
        raise PredictionError(f"cannot read {path} as NPZ: {type(exc).__name__}: {exc}") from None


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, max_elements: int | None
) -> np.ndarray:
    """One member, its header checked before its data is decompressed (and then only that much)."""
    key = info.filename[: -len(".npy")]
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise PredictionError(f"{path}: case {key!r} has an unknown .npy version {version}")
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
            raise PredictionError(
                f"{path}: case {key!r} must be an array of numbers; its header declares dtype {dtype}"
            )
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if max_elements is not None and n > max_elements:
            raise PredictionError(
                f"{path}: case {key!r} declares shape {shape} ({n} values); one case of this task "
                f"has at most {max_elements}"
            )
        size = n * dtype.itemsize
        data = f.read(size)
        if len(data) != size:
            raise PredictionError(f"{path}: case {key!r} is truncated")
        if f.read(1):  # and reading to the end checks the member's CRC
            raise PredictionError(f"{path}: case {key!r} holds more data than its header declares")
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _read_csv(path: Path, spec: TaskSpec) -> dict[str, np.ndarray]:
    import pandas as pd

    k = len(spec.classes)
    wanted = (
        ["case_id", "score"] if spec.kind == "binary" else ["case_id", *[f"p{i}" for i in range(k)]]
    )
    try:
        # Missing values only in the number columns: an empty or "nan" case id stays a string
        # (pandas would make it a float NaN, which breaks sorting and matching of ids).
        frame = pd.read_csv(
            path,
            dtype={"case_id": str},
            keep_default_na=False,
            na_values={c: ["nan", "NaN", ""] for c in wanted[1:]},
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise PredictionError(f"cannot read {path} as CSV: {exc}") from None
    if list(frame.columns) != wanted:
        raise PredictionError(
            f"{path}: columns must be {','.join(wanted)} for task {spec.name!r}; got {','.join(map(str, frame.columns)) or 'none'}"
        )
    ids = frame["case_id"].astype(str)
    dupes = ids[ids.duplicated()].unique().tolist()
    if dupes:
        raise PredictionError(f"{path}: case ids listed more than once: {_first(dupes)}")
    try:
        values = frame[wanted[1:]].to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        bad = [c for c in wanted[1:] if not pd.api.types.is_numeric_dtype(frame[c])]
        raise PredictionError(f"{path}: column(s) {bad} hold values that are not numbers") from None
    if spec.kind == "binary":
        return {i: np.asarray(v[0]) for i, v in zip(ids, values, strict=True)}
    return dict(zip(ids, values, strict=True))


def validate(
    spec: TaskSpec,
    predictions: Mapping[str, np.ndarray],
    case_ids: Sequence[str],
    *,
    shapes: Sequence[tuple[int, ...]] | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Check ``predictions`` against the expected ``case_ids``; return them in that order.

    ``shapes`` gives each case's image size ``(H, W)`` for native-size (instance) tasks.
    Returns ``(n,)`` probabilities (binary), ``(n, K)`` (multiclass), ``(n, C, H, W)`` bool
    (multilabel segmentation, probabilities thresholded at 0.5) or a list of label maps.
    """
    given = set(predictions)
    expected = list(case_ids)
    missing = [c for c in expected if c not in given]
    extra = sorted(given - set(expected))
    if missing:
        raise PredictionError(
            f"predictions for {spec.name!r} lack {len(missing)} of {len(expected)} case ids: {_first(missing)}"
        )
    if extra:
        raise PredictionError(
            f"predictions for {spec.name!r} have {len(extra)} unknown case ids: {_first(extra)}"
        )
    from medbench.metrics._validation import canonical_bool

    # Any nonzero byte of a boolean array is True (see metrics' canonical_bool).
    values = [canonical_bool(np.asarray(predictions[c])) for c in expected]
    check = {
        "binary": _binary,
        "multiclass": _multiclass,
        "multilabel-segmentation": _masks,
        "instance-segmentation": _instances,
    }[spec.kind]
    return check(spec, expected, values, shapes)


def _numeric(spec: TaskSpec, ids: list[str], values: list[np.ndarray]) -> None:
    for c, v in zip(ids, values, strict=True):
        if v.dtype.kind not in "biuf":
            raise PredictionError(
                f"predictions for {spec.name!r} must be numbers; case {c!r} has dtype {v.dtype}"
            )


def _finite(spec: TaskSpec, ids: list[str], values: list[np.ndarray]) -> None:
    bad = [
        (c, int(np.size(v) - np.isfinite(v).sum()))
        for c, v in zip(ids, values, strict=True)
        if v.dtype.kind == "f" and not np.isfinite(v).all()
    ]
    if bad:
        total = sum(n for _, n in bad)
        raise PredictionError(
            f"predictions for {spec.name!r} hold {total} NaN or infinite value(s) in {len(bad)} case(s): "
            f"{_first([c for c, _ in bad])}"
        )


def _in_unit_interval(spec: TaskSpec, ids: list[str], values: list[np.ndarray]) -> None:
    bad = [c for c, v in zip(ids, values, strict=True) if v.size and (v.min() < 0 or v.max() > 1)]
    if bad:
        raise PredictionError(
            f"predictions for {spec.name!r} must be probabilities in [0, 1]; {len(bad)} case(s) are outside: {_first(bad)}"
        )


def _same_shape(
    spec: TaskSpec, ids: list[str], values: list[np.ndarray], shape: tuple[int, ...]
) -> None:
    bad = [(c, v.shape) for c, v in zip(ids, values, strict=True) if v.shape != shape]
    if bad:
        c, got = bad[0]
        raise PredictionError(
            f"predictions for {spec.name!r} must have shape {(len(ids), *shape)} "
            f"(per case {shape}); got {got} for case {c!r}"
            + (f" and {len(bad) - 1} more" if len(bad) > 1 else "")
        )


def _binary(spec, ids, values, shapes):
    values = [v.reshape(()) if v.size == 1 else v for v in values]
    _same_shape(spec, ids, values, ())
    _numeric(spec, ids, values)
    _finite(spec, ids, values)
    _in_unit_interval(spec, ids, values)
    return np.array([float(v) for v in values], np.float64)


def _multiclass(spec, ids, values, shapes):
    k = len(spec.classes)
    _same_shape(spec, ids, values, (k,))
    _numeric(spec, ids, values)
    _finite(spec, ids, values)
    _in_unit_interval(spec, ids, values)
    out = np.stack(values).astype(np.float64) if values else np.zeros((0, k))
    sums = out.sum(axis=1)
    bad = [c for c, s in zip(ids, sums, strict=True) if abs(s - 1) > _PROB_TOL]
    if bad:
        raise PredictionError(
            f"predictions for {spec.name!r}: each row of class probabilities must sum to 1; "
            f"{len(bad)} row(s) do not: {_first(bad)}"
        )
    return out


def _masks(spec, ids, values, shapes):
    assert spec.input.size is not None
    shape = (len(spec.classes), *spec.input.size)
    _same_shape(spec, ids, values, shape)
    _numeric(spec, ids, values)
    _finite(spec, ids, values)
    ints = [
        c
        for c, v in zip(ids, values, strict=True)
        if v.dtype.kind in "iu" and v.size and (v.min() < 0 or v.max() > 1)
    ]
    if ints:
        raise PredictionError(
            f"integer masks for {spec.name!r} must hold only 0 and 1; {len(ints)} case(s) do not: {_first(ints)}"
        )
    _in_unit_interval(spec, ids, values)
    out = np.empty((len(values), *shape), bool)
    for i, v in enumerate(values):
        out[i] = v if v.dtype == bool else v >= 0.5
    return out


def _instances(spec, ids, values, shapes):
    out = []
    for i, (c, v) in enumerate(zip(ids, values, strict=True)):
        if v.dtype.kind not in "iub":
            raise PredictionError(
                f"instance predictions for {spec.name!r} must be integer label maps; case {c!r} has dtype {v.dtype}"
            )
        want = tuple(shapes[i]) if shapes is not None else v.shape
        if v.shape != want:
            raise PredictionError(
                f"instance predictions for {spec.name!r}: case {c!r} must be a label map of shape {want}; got {v.shape}"
            )
        if v.size and v.min() < 0:
            raise PredictionError(
                f"label map of case {c!r} has negative labels; 0 is background, objects > 0"
            )
        if v.size and v.dtype == np.uint64 and v.max() > np.iinfo(np.int64).max:
            # Cast to int64 below, such labels would wrap round to negative numbers.
            raise PredictionError(
                f"label map of case {c!r} has labels above {np.iinfo(np.int64).max}; got {v.max()}"
            )
        out.append(v.astype(np.int64))
    return out


def to_npz_dict(case_ids: Sequence[str], predictions) -> dict[str, np.ndarray]:
    """``{case_id: prediction}`` from a submission's predictions in case order."""
    if isinstance(predictions, np.ndarray):
        if len(predictions) != len(case_ids):
            raise PredictionError(
                f"the submission returned {len(predictions)} predictions for {len(case_ids)} test cases"
            )
        return {c: predictions[i] for i, c in enumerate(case_ids)}
    if isinstance(predictions, (list, tuple)):
        if len(predictions) != len(case_ids):
            raise PredictionError(
                f"the submission returned {len(predictions)} predictions for {len(case_ids)} test cases"
            )
        return {c: np.asarray(p) for c, p in zip(case_ids, predictions, strict=True)}
    raise PredictionError(
        f"predict() must return a numpy array or a list of arrays; got {type(predictions).__name__}"
    )
