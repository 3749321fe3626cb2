"""The offline ImageNet weights are genuine and wired as the submissions use them."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import torch
from sklearn.datasets import load_sample_image

from medbench.errors import SubmissionError
from medbench.pretrained import DAISY, LITE, lite, stage_features, weights_file, weights_info
from medbench.submission.transforms import normalise

pytest.importorskip("efficientnet_lite_pytorch", reason='pip install "medbench[pretrained]"')


def _as_input(rgb: np.ndarray, side: int = 224) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, side, side)`` as medbench's trainer hands it to a model."""
    small = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    return normalise(torch.from_numpy(small).permute(2, 0, 1)[None].contiguous())


@pytest.fixture(scope="module")
def daisy() -> np.ndarray:
    return load_sample_image("flower.jpg")  # scikit-learn's sample image: a daisy


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "efficientnet_lite1"])
def test_the_weights_see_a_daisy(backbone, daisy):
    # The ImageNet head is kept for this test only: top-1 must be class 985, "daisy", at the
    # resolution each network was trained at.
    model = lite(backbone, num_classes=1000, keep_imagenet_head=True).eval()
    with torch.no_grad():
        logits = model(_as_input(daisy, LITE[backbone][2]))
    assert int(logits.argmax()) == DAISY


def test_lite2_sees_the_chinese_palace():
    # Lite2 ranks the daisy 21st (its top-1 is 599, "honeycomb"), but it is no random network:
    # scikit-learn's other sample image, a Chinese temple, is a building to it.
    buildings = {698: "palace", 663: "monastery", 832: "stupa", 483: "castle", 442: "bell cote"}
    model = lite("efficientnet_lite2", num_classes=1000, keep_imagenet_head=True).eval()
    with torch.no_grad():
        top5 = model(_as_input(load_sample_image("china.jpg"), 260)).topk(5).indices[0].tolist()
    assert top5[0] in buildings and len(set(top5) & set(buildings)) >= 3


def test_random_weights_do_not(daisy):
    torch.manual_seed(0)
    model = lite("efficientnet_lite0", num_classes=1000, pretrained=False).eval()
    with torch.no_grad():
        assert int(model(_as_input(daisy)).argmax()) != DAISY


def test_a_grey_stem_is_the_rgb_network_on_the_grey_image_repeated(daisy):
    grey = cv2.cvtColor(daisy, cv2.COLOR_RGB2GRAY)
    rgb = lite("efficientnet_lite0", num_classes=1000, keep_imagenet_head=True).eval()
    one = lite("efficientnet_lite0", num_classes=1000, keep_imagenet_head=True, in_chans=1).eval()
    small = cv2.resize(grey, (160, 160), interpolation=cv2.INTER_AREA)
    x1 = normalise(torch.from_numpy(small)[None, None].contiguous())
    x3 = x1.repeat(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(one(x1), rgb(x3), atol=1e-4, rtol=1e-4)


def test_a_task_head_keeps_every_pretrained_weight_but_the_classifier():
    state = torch.load(weights_file("efficientnet_lite0"), map_location="cpu", weights_only=True)
    model = lite("efficientnet_lite0", num_classes=2)
    mine = model.net.state_dict()
    assert mine["_fc.weight"].shape == (2, 1280)
    shared = [k for k in state if not k.startswith("_fc.")]
    assert shared and all(torch.equal(mine[k], state[k]) for k in shared)


def test_frozen_stages_get_no_gradients_and_keep_their_statistics():
    model = lite("efficientnet_lite0", num_classes=2, trainable_stages=2).train()
    frozen_bn = model.net._bn0
    before = frozen_bn.running_mean.clone()
    loss = model(torch.randn(4, 3, 96, 96)).sum()
    loss.backward()
    assert model.net._conv_stem.weight.grad is None
    assert model.net._blocks[-1]._project_conv.weight.grad is not None
    assert not frozen_bn.training and torch.equal(frozen_bn.running_mean, before)
    with pytest.raises(SubmissionError, match="trainable_stages must be 1 to 7"):
        lite("efficientnet_lite0", num_classes=2, trainable_stages=9)


def test_stage_features_have_the_three_depths():
    model = lite("efficientnet_lite0", num_classes=1).eval()
    with torch.no_grad():
        features = stage_features(model, torch.zeros(2, 3, 64, 64))
    assert [f.shape for f in features] == [(2, 192), (2, 320), (2, 1280)]


def test_weights_info_names_the_file_and_its_hash():
    info = weights_info("efficientnet_lite0")
    data = weights_file("efficientnet_lite0").read_bytes()
    assert info["weights_sha256"] == hashlib.sha256(data).hexdigest()
    assert info["weights_file"] == weights_file("efficientnet_lite0").name
    assert "ImageNet" in info["weights"]
    with pytest.raises(SubmissionError, match="no offline ImageNet weights for 'vgg16'"):
        weights_info("vgg16")
