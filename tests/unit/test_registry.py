"""The name registry: refuses duplicates, answers unknown names with the closest ones."""

from __future__ import annotations

import pytest

from medbench.errors import DuplicateNameError, MedbenchError, UnknownNameError
from medbench.registry import Registry, closest_names
from medbench.tasks import TASKS, get_task


@pytest.fixture
def registry() -> Registry[object]:
    reg: Registry[object] = Registry("widget")
    reg.add("alpha", 1)
    reg.add("alpine", 2)
    reg.add("beta", 3)
    return reg


def test_add_and_get(registry):
    assert registry.get("alpha") == 1
    assert registry.names() == ["alpha", "alpine", "beta"]
    assert list(registry) == ["alpha", "alpine", "beta"]
    assert len(registry) == 3
    assert "beta" in registry and "gamma" not in registry


def test_duplicate_name_is_refused_and_keeps_the_first(registry):
    with pytest.raises(DuplicateNameError, match="a widget named 'alpha' is already registered"):
        registry.add("alpha", 99)
    assert registry.get("alpha") == 1
    assert len(registry) == 3


def test_duplicate_task_is_refused():
    original = get_task("jsrt-anatomy")
    with pytest.raises(DuplicateNameError, match="'jsrt-anatomy'"):
        TASKS.add("jsrt-anatomy", original)
    assert get_task("jsrt-anatomy") is original


def test_unknown_name_suggests_the_closest(registry):
    with pytest.raises(UnknownNameError) as info:
        registry.get("alpah")
    message = str(info.value)
    assert message.startswith("unknown widget 'alpah'; did you mean 'alpha'")
    assert "(known: alpha, alpine, beta)" in message


def test_unknown_name_without_near_names_lists_the_known(registry):
    with pytest.raises(UnknownNameError) as info:
        registry.get("zzzzzz")
    assert "did you mean" not in str(info.value)
    assert "known: alpha, alpine, beta" in str(info.value)


def test_unknown_name_error_is_a_medbench_error_and_a_key_error(registry):
    with pytest.raises(UnknownNameError) as info:
        registry.get("nope")
    assert isinstance(info.value, MedbenchError)
    assert isinstance(info.value, KeyError)
    # KeyError would show repr() of the message (extra quotes); the message must read plainly.
    assert str(info.value).startswith("unknown widget 'nope'")


def test_get_task_suggests_both_jsrt_tasks():
    with pytest.raises(UnknownNameError) as info:
        get_task("jsrt")
    message = str(info.value)
    assert "did you mean" in message
    suggested = message.split("did you mean", 1)[1].split("?", 1)[0]
    assert "'jsrt-anatomy'" in suggested and "'jsrt-nodule'" in suggested


def test_get_task_typo_suggests_the_task():
    with pytest.raises(UnknownNameError, match=r"did you mean 'messidor2-grading'"):
        get_task("messidor2-grdaing")


@pytest.mark.parametrize(
    ("name", "names", "expected"),
    [
        ("jsrt", ["jsrt-anatomy", "jsrt-nodule", "tb-cxr"], {"jsrt-anatomy", "jsrt-nodule"}),
        ("tb", ["jsrt-anatomy", "tb-cxr"], {"tb-cxr"}),  # a prefix too short for difflib
        ("xyz", ["jsrt-anatomy", "tb-cxr"], set()),
    ],
)
def test_closest_names(name, names, expected):
    assert set(closest_names(name, names)) == expected


def test_closest_names_returns_at_most_n():
    names = [f"task-{i}" for i in range(10)]
    assert len(closest_names("task", names, n=3)) == 3


def test_decorator_registers_and_returns_the_object():
    reg: Registry[type] = Registry("model")

    @reg.register("tiny")
    class Tiny:
        pass

    assert reg.get("tiny") is Tiny
    assert Tiny.__name__ == "Tiny"  # the decorator hands back the class itself

    with pytest.raises(DuplicateNameError, match="a model named 'tiny'"):

        @reg.register("tiny")
        class Other:
            pass

    assert reg.get("tiny") is Tiny
