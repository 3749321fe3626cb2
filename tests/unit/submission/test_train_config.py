"""``[train]`` keys of the standard trainer: parsed with defaults, bad values refused by name."""

from __future__ import annotations

import pytest

from medbench.errors import SubmissionError
from medbench.submission.trainer import TrainConfig


def test_defaults_and_overrides():
    config = TrainConfig.from_options({"epochs": "3", "checkpoint_every": 5, "extra": "kept"})
    assert (config.epochs, config.checkpoint_every, config.val_every) == (3, 5, 1)
    defaults = TrainConfig.from_options({})
    assert (defaults.checkpoint_every, defaults.checkpoint_minutes) == (None, 1.0)
    assert config.options["extra"] == "kept"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("epochs", 0),
        ("batch_size", -1),
        ("val_every", 0),
        ("checkpoint_every", 0),
        ("patience", 0),
        ("num_workers", -2),
        ("lr", 0.0),
        ("max_minutes", float("inf")),
        ("weight_decay", -0.1),
        ("checkpoint_minutes", -1),
    ],
)
def test_a_bad_value_is_refused_by_name(key, value):
    with pytest.raises(SubmissionError, match=rf"\[train\] {key} must"):
        TrainConfig.from_options({key: value})
