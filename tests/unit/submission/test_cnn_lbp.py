"""The reference submissions ``submissions/cnn`` (timm backbones) and ``submissions/lbp-svm``
(local binary patterns + SVM), on CPU.

Each test asserts one property: the folders keep the contract on every task they enter, the
LBP features have LBP's grey-scale invariance, the SVM learns texture, the CNN trains and
predicts probabilities, and a bad option (an unknown backbone, pretrained weights out of reach)
is a clear SubmissionError.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from medbench.check import check_submission, synthetic_split
from medbench.data.prepare import prepare
from medbench.errors import SubmissionError
from medbench.submission.api import Dataset, RunContext, Submission, TaskInfo
from medbench.submission.loader import load_submission, read_manifest
from medbench.tasks import get_task

ROOT = Path(__file__).resolve().parents[3]
CNN = ROOT / "submissions" / "cnn"
LBP = ROOT / "submissions" / "lbp-svm"


# --- helpers -------------------------------------------------------------------------------------


def _load(folder: Path) -> tuple[Submission, ModuleType]:
    """A fresh instance of the folder's entry and the module it lives in (imported in isolation)."""
    _, sub = load_submission(folder)
    return sub, sys.modules[type(sub).__module__]


def _task(folder: Path, name: str, **overrides) -> TaskInfo:
    train = {**read_manifest(folder).train_for(name), **overrides}
    return TaskInfo.from_spec(get_task(name), train)


def _ctx(workdir: Path, task: TaskInfo) -> RunContext:
    return RunContext(
        device="cpu",
        seed=0,
        workdir=workdir,
        logger=logging.getLogger("test.cnn_lbp"),
        train=task.train,
    )


def _texture(rng: np.random.Generator, sigma: float, size: int = 48) -> np.ndarray:
    """``(size, size, 1)`` uint8 Gaussian-filtered noise with a random brightness and contrast."""
    field = ndimage.gaussian_filter(rng.normal(size=(size, size)), sigma)
    field /= field.std()
    image = rng.uniform(90, 160) + rng.uniform(15, 35) * field
    return np.clip(image, 0, 255).astype(np.uint8)[:, :, None]


def _texture_split(
    rng: np.random.Generator, labels: list[int], sigmas: dict[int, float]
) -> Dataset:
    images = np.stack([_texture(rng, sigmas[y]) for y in labels])
    return Dataset(
        images, tuple(f"case-{i}" for i in range(len(labels))), np.asarray(labels, np.int64)
    )


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Train on one intra-op thread. On a shared 2-core machine, torch's OpenMP threads wait for
    each other whenever another process holds a core: measured here, `medbench check` of this
    folder took 10 s with one thread and 57 to 74 s with two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy_lesions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Dataset]]:
    """The prepared toy-lesions splits (generated, no mirror needed) in a private MEDBENCH_HOME."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDBENCH_HOME", str(tmp_path_factory.mktemp("medbench-home-cnn-lbp")))
        prepared = prepare("toy-lesions")
        splits = {s: prepared.split(s) for s in ("train", "val", "test")}
        yield {s: Dataset(d.images, d.case_ids, d.targets) for s, d in splits.items()}


# --- both folders keep the contract --------------------------------------------------------------


@pytest.mark.parametrize("folder", [CNN, LBP], ids=["cnn", "lbp-svm"])
def test_check_passes_on_every_entered_task(folder: Path) -> None:
    results = check_submission(folder)
    assert [r.task for r in results] == list(read_manifest(folder).tasks)
    failures = [f"{r.task}: {r.message}" for r in results if not r.ok]
    assert not failures, failures


# --- lbp-svm -------------------------------------------------------------------------------------


def test_lbp_features_are_invariant_to_monotonic_grey_level_changes() -> None:
    """LBP keeps only the order of each pixel and its neighbours (Ojala et al. 2002).

    skimage samples off-grid neighbours by bilinear interpolation, so a non-linear monotonic
    map is not exactly order-preserving there, and an offset can flip exact float ties; a
    power-of-two gain keeps every comparison bit for bit.
    """
    sub, _ = _load(LBP)
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(size=(96, 80)), 1.5)
    image = np.round(60 + 20 * field / field.std()).clip(0, 120).astype(np.uint8)[None, :, :, None]
    features = sub.features(image)
    assert features.shape == (1, (10 + 18) * (1 + 4 + 16))
    np.testing.assert_array_equal(sub.features(image * 2), features)
    brighter = sub.features(image * 2 + 9)
    assert np.abs(brighter - features).max() < 0.01
    # Control: a non-monotonic remap of the grey levels does change the features.
    shuffled = rng.permutation(256).astype(np.uint8)[image]
    assert np.abs(sub.features(shuffled) - features).max() > 0.05


def test_lbp_svm_separates_textures_whatever_their_brightness(tmp_path: Path) -> None:
    """Fine against coarse Gaussian-filtered noise, each image with its own brightness and contrast:
    intensities tell the classes apart poorly, local binary patterns do."""
    sub, _ = _load(LBP)
    rng = np.random.default_rng(1)
    sigmas = {0: 0.8, 1: 2.0}
    train, val, test = (
        _texture_split(rng, [i % 2 for i in range(n)], sigmas) for n in (60, 20, 40)
    )
    task = _task(LBP, "toy-lesions")
    ctx = _ctx(tmp_path, task)
    sub.fit(task, train, val, ctx)
    proba = sub.predict(task, Dataset(test.images, test.case_ids), ctx)
    assert proba.shape == (40,) and np.all((proba >= 0) & (proba <= 1))
    assert roc_auc_score(test.targets, proba) > 0.9


def test_lbp_svm_finds_the_toy_lesions(toy_lesions: dict[str, Dataset], tmp_path: Path) -> None:
    """The blob raises local contrast over a fine texture, which changes its local binary patterns."""
    sub, _ = _load(LBP)
    task = _task(LBP, "toy-lesions")
    ctx = _ctx(tmp_path, task)
    sub.fit(task, toy_lesions["train"], toy_lesions["val"], ctx)
    test = toy_lesions["test"]
    proba = sub.predict(task, Dataset(test.images, test.case_ids), ctx)
    assert proba.shape == (len(test),) and np.all((proba >= 0) & (proba <= 1))
    auc = roc_auc_score(test.targets, proba)
    assert auc > 0.6, f"lbp-svm test AUC on toy-lesions: {auc:.3f}"


def test_lbp_svm_gives_a_class_absent_from_train_probability_zero(tmp_path: Path) -> None:
    sub, _ = _load(LBP)
    rng = np.random.default_rng(2)
    sigmas = {0: 0.7, 1: 1.2, 2: 2.0, 4: 3.0}  # class 3 never appears in train
    labels = [(0, 1, 2, 4)[i % 4] for i in range(40)]
    train, val = _texture_split(rng, labels, sigmas), _texture_split(rng, labels[:12], sigmas)
    test = _texture_split(rng, labels[:10], sigmas)
    task = _task(LBP, "retinamnist")
    assert task.n_classes == 5
    ctx = _ctx(tmp_path, task)
    sub.fit(task, train, val, ctx)
    proba = sub.predict(task, Dataset(test.images, test.case_ids), ctx)
    assert proba.shape == (10, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all(proba[:, 3] == 0) and np.all(proba[:, [0, 1, 2, 4]] > 0)


def test_lbp_svm_learns_retinamnist_from_the_mirror(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real data: DR grade from 28x28 fundus texture (MedMNIST's ResNet-18 reaches AUC 0.717)."""
    monkeypatch.setenv("MEDBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDBENCH_DATA", str(mirror))
    prepared = prepare("retinamnist")
    train, val = prepared.split("train"), prepared.split("val")
    test = prepared.split("test")
    sub, _ = _load(LBP)
    task = _task(LBP, "retinamnist")
    ctx = _ctx(tmp_path / "run", task)
    sub.fit(
        task,
        Dataset(train.images, train.case_ids, train.targets),
        Dataset(val.images, val.case_ids, val.targets),
        ctx,
    )
    proba = sub.predict(task, Dataset(test.images, test.case_ids), ctx)
    assert proba.shape == (len(test), 5)
    auc = roc_auc_score(test.targets, proba, multi_class="ovr", average="macro")
    assert auc > 0.6, f"lbp-svm macro AUC on RetinaMNIST test: {auc:.3f}"


# --- cnn -----------------------------------------------------------------------------------------


def test_class_weights_are_inverse_frequencies_with_mean_one() -> None:
    _, model = _load(CNN)
    labels = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(model.class_weights(labels, 3, "balanced"), [0.5, 1.5, 0.0])
    sqrt = np.sqrt([1 / 3, 1.0])
    np.testing.assert_allclose(
        model.class_weights(labels, 3, "sqrt"), [*(sqrt / sqrt.mean()), 0.0], rtol=1e-6
    )
    assert model.class_weights(labels, 3, "none") is None


def test_cnn_resnet18_trains_two_epochs_on_toy_lesions(
    toy_lesions: dict[str, Dataset], tmp_path: Path
) -> None:
    sub, _ = _load(CNN)
    task = _task(CNN, "toy-lesions", backbone="resnet18", pretrained=False, epochs=2, num_workers=0)
    ctx = _ctx(tmp_path, task)
    sub.fit(task, toy_lesions["train"], toy_lesions["val"], ctx)
    test = toy_lesions["test"]
    proba = sub.predict(task, Dataset(test.images, test.case_ids), ctx)
    assert proba.shape == (len(test),) and proba.dtype == np.float64
    assert np.all(np.isfinite(proba)) and np.all((proba >= 0) & (proba <= 1))
    assert proba.std() > 0, "every test case got the same probability"
    assert (tmp_path / "best.pt").is_file()


def _tiny_fit(folder: Path, name: str, tmp_path: Path, **overrides) -> None:
    task = _task(folder, name, epochs=1, batch_size=4, **overrides)
    train, val = (synthetic_split(get_task(name), n, np.random.default_rng(0)) for n in (8, 4))
    sub, _ = _load(folder)
    sub.fit(task, train, val, _ctx(tmp_path, task))


def test_cnn_pretrained_without_network_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # Offline mode (read at call time) and an empty cache: no weights, and no retries to wait for.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    started = time.perf_counter()
    with pytest.raises(
        SubmissionError,
        match=r"pretrained = true: ImageNet weights for resnet18 could not be fetched",
    ) as info:
        _tiny_fit(CNN, "toy-lesions", tmp_path / "run", backbone="resnet18", pretrained=True)
    assert 'backbone = "efficientnet_lite0"' in str(info.value)
    assert time.perf_counter() - started < 30


def test_cnn_unknown_backbone_lists_the_supported_ones(tmp_path: Path) -> None:
    expected = (
        r"\[train\] backbone must be one of \['densenet121', 'efficientnet_lite0', "
        r"'efficientnet_lite1', 'efficientnet_lite2', 'inception_v3', 'resnet18', 'resnet50'\]; "
        r"got 'vgg16'"
    )
    with pytest.raises(SubmissionError, match=expected):
        _tiny_fit(CNN, "toy-lesions", tmp_path, backbone="vgg16")


def test_cnn_backbone_too_large_for_the_input_asks_for_image_size(tmp_path: Path) -> None:
    task = _task(CNN, "retinamnist")
    assert task.train.get("image_size") == 96  # the manifest upsamples the 28 px RetinaMNIST
    with pytest.raises(
        SubmissionError, match=r"inception_v3 needs inputs of at least 75 px.*image_size = 75"
    ):
        _tiny_fit(CNN, "retinamnist", tmp_path, backbone="inception_v3", image_size=64)
