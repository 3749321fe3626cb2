"""Fixtures shared by the whole suite: an isolated MEDBENCH_HOME and the real-data mirror."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def medbench_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One MEDBENCH_HOME for the session, so real-data preparation is shared across tests.

    Session-scoped (not monkeypatch) so that session-scoped fixtures that prepare data also
    see it; the user's own cache is never touched.
    """
    home = tmp_path_factory.mktemp("medbench-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDBENCH_HOME", str(home))
        yield home


@pytest.fixture
def fresh_home(
    medbench_home: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """An empty MEDBENCH_HOME for this test only (nothing prepared, nothing downloaded)."""
    home = tmp_path_factory.mktemp("fresh-home")
    monkeypatch.setenv("MEDBENCH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The read-only data mirror (MEDBENCH_DATA); skipped when absent, unless CI requires it.

    With ``MEDBENCH_REQUIRE_DATA=1`` a missing mirror is a failure, so CI cannot pass by
    silently skipping every real-data test.
    """
    value = os.environ.get("MEDBENCH_DATA", "")
    # MEDBENCH_DATA may list several folders; the mirror is the first.
    first = value.split(os.pathsep)[0] if value else ""
    path = Path(first).expanduser() if first else None
    if path is not None and path.is_dir():
        return path.resolve()
    reason = "the data mirror is not available: " + (
        f"MEDBENCH_DATA={value!r} is not a folder" if value else "MEDBENCH_DATA is not set"
    )
    if os.environ.get("MEDBENCH_REQUIRE_DATA") == "1":
        pytest.fail(f"{reason}, and MEDBENCH_REQUIRE_DATA=1 requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mlflow_installed() -> None:
    """Skip a test that needs MLflow (an optional extra) where it is not installed; with
    ``MEDBENCH_REQUIRE_MLFLOW=1`` (CI) a missing MLflow is a failure, not a skip."""
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        reason = f'MLflow is an optional extra: pip install "medbench[mlflow]" ({exc})'
    else:
        return
    if os.environ.get("MEDBENCH_REQUIRE_MLFLOW") == "1":
        pytest.fail(f"{reason}, and MEDBENCH_REQUIRE_MLFLOW=1 requires it", pytrace=False)
    pytest.skip(reason)
