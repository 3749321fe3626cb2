"""Input checks shared by the metric modules.

Every check raises ``ValueError`` with a message that states the rule and the values seen, in the
style of scikit-learn's ``check_consistent_length``.
"""

from __future__ import annotations

import warnings

import numpy as np

# Show at most this many offending values in an error message.
_MAX_SHOWN = 10


def _shown(values: np.ndarray) -> str:
    values = np.unique(values)
    text = ", ".join(str(v) for v in values[:_MAX_SHOWN].tolist())
    return f"[{text}{', ...' if values.size > _MAX_SHOWN else ''}]"


class UndefinedMetricWarning(RuntimeWarning):
    """A metric value is undefined (AUC with one class, Dice with both masks empty) and is NaN.

    A subclass of RuntimeWarning, so that scoring can silence exactly these (it counts them)
    and still show every other warning.
    """


def warn_undefined(message: str) -> None:
    """Warn that a metric value is undefined and was returned as NaN."""
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)


def check_consistent_length(**arrays: np.ndarray) -> None:
    """All arrays have the same number of samples (first axis)."""
    lengths = [len(a) for a in arrays.values()]
    if len(set(lengths)) > 1:
        names = " and ".join(arrays)
        raise ValueError(f"{names} have inconsistent numbers of samples: {lengths}")


def check_1d(x, name: str, *, dtype=None) -> np.ndarray:
    """A non-empty 1-D array."""
    arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D with shape (n_samples,); got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one sample; got 0")
    return arr


def check_finite(arr: np.ndarray, name: str) -> np.ndarray:
    """No NaN or infinity (a score must be a number to be ranked or thresholded)."""
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} must be finite; got {bad} NaN or infinite values")
    return arr


def check_binary_target(y, name: str = "y_true") -> np.ndarray:
    """Labels in {0, 1} (booleans accepted), returned as a bool array."""
    arr = check_1d(y, name)
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.number) and np.all(np.isin(arr, (0, 1)))):
        raise ValueError(f"{name} must be binary with values in {{0, 1}}; got values {_shown(arr)}")
    return arr.astype(bool)


def check_scores(y_score, name: str = "y_score") -> np.ndarray:
    """Finite real-valued 1-D scores, returned as float64."""
    arr = check_1d(y_score, name)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    return check_finite(arr.astype(np.float64), name)


def check_probabilities(y_score, name: str = "y_score") -> np.ndarray:
    """Scores that are probabilities: finite and within [0, 1]."""
    arr = check_scores(y_score, name)
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(
            f"{name} must be probabilities in [0, 1]; got values in [{arr.min():g}, {arr.max():g}]"
        )
    return arr


def check_n_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2; got {n_classes!r}")
    return int(n_classes)


def check_class_labels(y, n_classes: int, name: str) -> np.ndarray:
    """Integer class labels in 0..n_classes-1, returned as int64."""
    arr = check_1d(y, name)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must hold integer class labels; got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        fractional = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(fractional):
            raise ValueError(
                f"{name} must hold integer class labels; got values {_shown(arr[fractional])}"
            )
    outside = (arr < 0) | (arr >= n_classes)
    if np.any(outside):
        raise ValueError(
            f"{name} must hold class labels in 0..{n_classes - 1}; got values {_shown(arr[outside])}"
        )
    return arr.astype(np.int64)


def check_fraction(value: float, name: str, *, low_open: bool = True) -> float:
    """A number in (0, 1) (or [0, 1) with ``low_open=False``)."""
    ok = isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
    ok = ok and (0 < value < 1 if low_open else 0 <= value < 1)
    if not ok:
        interval = "(0, 1)" if low_open else "[0, 1)"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
    return float(value)


def check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def canonical_bool(arr: np.ndarray) -> np.ndarray:
    """``arr`` (bool) with every True stored as the byte 0x01.

    A numpy bool array may hold any nonzero byte as True (``(m * 255).astype(np.uint8).view(bool)``
    is a valid mask to numpy); code that counts set bits (the popcount in Dice/IoU) or compares
    raw bytes needs 0x01. Any nonzero byte is True; a clean array is returned as it is.
    """
    if arr.dtype == bool and arr.size and arr.view(np.uint8).max() > 1:
        return arr.view(np.uint8) != 0
    return arr


def check_masks(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Two boolean mask stacks of the same shape ``(n_cases, n_classes, H, W)``."""
    masks = []
    for name, x in (("y_true", y_true), ("y_pred", y_pred)):
        arr = np.asarray(x)
        if arr.ndim != 4:
            raise ValueError(
                f"{name} must have shape (n_cases, n_classes, H, W); got shape {arr.shape}"
            )
        if arr.dtype != bool:
            if not (np.issubdtype(arr.dtype, np.number) and np.all(np.isin(arr, (0, 1)))):
                raise ValueError(
                    f"{name} must be a boolean mask (or hold only 0 and 1); got dtype {arr.dtype} "
                    f"with values {_shown(arr)}"
                )
            arr = arr.astype(bool)
        masks.append(canonical_bool(arr))
    if masks[0].shape != masks[1].shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {masks[0].shape} and {masks[1].shape}"
        )
    return masks[0], masks[1]


def check_label_image(x, name: str) -> np.ndarray:
    """A 2-D map of non-negative integer labels (0 = background)."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D label image with shape (H, W); got shape {arr.shape}"
        )
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels; got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(
            f"{name} must hold non-negative labels (0 = background); got values {_shown(arr[arr < 0])}"
        )
    return arr


def check_same_shape(a: np.ndarray, b: np.ndarray, names: str = "y_true and y_pred") -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape; got {a.shape} and {b.shape}")
