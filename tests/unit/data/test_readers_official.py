"""Readers on synthetic stand-ins laid out exactly like the official archives a user downloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from fakes import TB_FOLDERS, fake_tb_tree
from medbench.data.arrays import Ragged
from medbench.data.datasets import DATASETS
from medbench.data.datasets.jsrt import read_jsrt_img
from medbench.data.datasets.messidor import crop_to_fundus
from medbench.data.prepare import prepare
from medbench.data.sources import locate
from medbench.errors import DataError, DataNotFoundError
from medbench.tasks import get_task
from medbench.tasks.splits import load_split


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path)
    return path


# --- (a) JSRT: All247images/*.IMG + SCR gif masks --------------------------------------------------

JSRT_SIZE = 2048


def write_jsrt_img(path: Path, values: np.ndarray) -> Path:
    """A JSRT .IMG: 2048x2048 big-endian uint16, no header (8 MiB)."""
    assert values.shape == (JSRT_SIZE, JSRT_SIZE)
    path.parent.mkdir(parents=True, exist_ok=True)
    values.astype(">u2").tofile(path)
    return path


def jsrt_values() -> np.ndarray:
    values = np.zeros((JSRT_SIZE, JSRT_SIZE), np.uint16)
    values[0, 0], values[0, 1], values[0, 2] = 0, 4095, 2048
    values[0, 3] = 1  # 0x0001: read little-endian it would be 256
    values[0, 4] = 5000  # out of the 12-bit range: clipped to 4095
    values[1] = np.arange(JSRT_SIZE) * 2  # a ramp over the 12-bit range
    return values


def gif_mask(path: Path, mask: np.ndarray, *, inverted_palette: bool = False) -> Path:
    """A 1024x1024 SCR-style mask written as GIF (palette image)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if inverted_palette:
        # Index 0 = white: the colour, not the palette index, says what is foreground.
        image = Image.fromarray((~mask).astype(np.uint8), mode="P")
        image.putpalette([255, 255, 255, 0, 0, 0] + [0, 0, 0] * 254)
    else:
        image = Image.fromarray(mask.astype(np.uint8) * 255)
    image.save(path, format="GIF")
    return path


def box(y0: int, y1: int, x0: int, x1: int, size: int = 1024) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[y0:y1, x0:x1] = True
    return mask


SCR_BOXES = {
    # Left/right are the patient's: left_lung lies on the image's right.
    "left_lung": box(200, 800, 560, 900),
    "right_lung": box(200, 800, 120, 460),
    "heart": box(500, 850, 400, 700),
    "left_clavicle": box(150, 230, 560, 900),
    "right_clavicle": box(150, 230, 120, 460),
}


@pytest.fixture
def jsrt_official(tmp_path: Path) -> Path:
    root = tmp_path / "jsrt-official"
    write_jsrt_img(root / "All247images" / "JPCLN001.IMG", jsrt_values())
    write_jsrt_img(root / "All247images" / "JPCNN002.IMG", np.full((JSRT_SIZE,) * 2, 4095))
    for structure, mask in SCR_BOXES.items():
        gif_mask(root / "scratch" / "fold1" / "masks" / structure / "JPCLN001.gif", mask)
    return root


def test_read_jsrt_img_inverts_and_scales(jsrt_official):
    image = read_jsrt_img(jsrt_official / "All247images" / "JPCLN001.IMG")
    assert image.shape == (JSRT_SIZE, JSRT_SIZE, 1) and image.dtype == np.uint8
    assert image[0, 0, 0] == 255  # 0 (low density) is bright
    assert image[0, 1, 0] == 0  # 4095 is black
    assert image[0, 2, 0] == 127
    assert image[0, 3, 0] == 255  # big-endian: 1 stays 1
    assert image[0, 4, 0] == 0  # clipped to 4095
    ramp = np.minimum(np.arange(JSRT_SIZE) * 2, 4095)
    np.testing.assert_array_equal(image[1, :, 0], 255 - np.rint(ramp * 255 / 4095))


def test_read_jsrt_img_refuses_a_file_of_the_wrong_size(tmp_path):
    path = tmp_path / "JPCLN001.IMG"
    np.zeros((1024, 1024), ">u2").tofile(path)
    with pytest.raises(
        DataError, match=r"JPCLN001\.IMG is not a JSRT \.IMG file: expected 8388608 bytes"
    ):
        read_jsrt_img(path)


def test_jsrt_official_cases_and_image(jsrt_official):
    loc = locate("jsrt-scr", from_dir=jsrt_official)
    assert loc.layout == "official"
    ds = DATASETS.get("jsrt-scr")
    cases = ds.cases(loc)
    assert list(cases.index) == ["JPCLN001", "JPCNN002"]
    assert cases.loc["JPCLN001"].to_dict() == {"nodule": "1", "scr_fold": "1"}
    assert cases.loc["JPCNN002"].to_dict() == {"nodule": "0", "scr_fold": "2"}
    assert ds.target(loc, "JPCLN001", "nodule") == 1
    assert ds.target(loc, "JPCNN002", "nodule") == 0
    image = ds.image(loc, "JPCNN002")
    assert image.shape == (JSRT_SIZE, JSRT_SIZE, 1) and (image == 0).all()
    assert "All247images/JPCNN002.IMG" in loc.read  # every file read is hashed for the manifest


def test_jsrt_official_anatomy_unions_left_and_right(jsrt_official):
    loc = locate("jsrt-scr", from_dir=jsrt_official)
    masks = DATASETS.get("jsrt-scr").target(loc, "JPCLN001", "anatomy")
    assert masks.shape == (3, 1024, 1024) and masks.dtype == bool
    np.testing.assert_array_equal(masks[0], SCR_BOXES["left_lung"] | SCR_BOXES["right_lung"])
    np.testing.assert_array_equal(masks[1], SCR_BOXES["heart"])
    np.testing.assert_array_equal(
        masks[2], SCR_BOXES["left_clavicle"] | SCR_BOXES["right_clavicle"]
    )


def test_jsrt_gif_mask_is_read_by_colour_not_palette_index(jsrt_official):
    folder = jsrt_official / "scratch" / "fold1" / "masks"
    gif_mask(folder / "heart" / "JPCLN001.gif", SCR_BOXES["heart"], inverted_palette=True)
    loc = locate("jsrt-scr", from_dir=jsrt_official)
    masks = DATASETS.get("jsrt-scr").target(loc, "JPCLN001", "anatomy")
    np.testing.assert_array_equal(masks[1], SCR_BOXES["heart"])


def test_jsrt_official_missing_mask_names_it(jsrt_official):
    loc = locate("jsrt-scr", from_dir=jsrt_official)
    with pytest.raises(DataNotFoundError, match=r"missing SCR mask left_lung/JPCNN002\.gif"):
        DATASETS.get("jsrt-scr").target(loc, "JPCNN002", "anatomy")


# --- (b) ISBI 2012: train-volume.tif + train-labels.tif --------------------------------------------


@pytest.fixture
def isbi_official(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    volume = rng.integers(0, 256, size=(30, 64, 64), dtype=np.uint8)
    labels = np.where(rng.random((30, 64, 64)) < 0.2, 0, 255).astype(np.uint8)
    root = tmp_path / "isbi-official"
    root.mkdir()
    tifffile.imwrite(root / "train-volume.tif", volume)
    tifffile.imwrite(root / "train-labels.tif", labels)
    return root, volume, labels


def test_isbi_official_slices_equal_the_pages(isbi_official):
    root, volume, labels = isbi_official
    assert len(tifffile.TiffFile(root / "train-volume.tif").pages) == 30
    loc = locate("isbi2012", from_dir=root)
    assert loc.layout == "official"
    ds = DATASETS.get("isbi2012")
    assert list(ds.cases(loc).index) == [f"slice-{i:02d}" for i in range(30)]
    for i in (0, 7, 29):
        np.testing.assert_array_equal(ds.image(loc, f"slice-{i:02d}"), volume[i][:, :, None])
        # 0 = membrane in the source; the task predicts the membrane.
        np.testing.assert_array_equal(
            ds.target(loc, f"slice-{i:02d}", "membranes"), (labels[i] == 0)[None]
        )


def test_isbi_official_prepares_contiguous_blocks(isbi_official, fresh_home):
    root, volume, labels = isbi_official
    prepared = prepare("isbi2012-membranes", from_dir=root)
    assert prepared.manifest["counts"] == {"train": 20, "val": 5, "test": 5}
    assert prepared.source["layout"] == "official"
    test = prepared.split("test")
    assert test.case_ids == tuple(f"slice-{i}" for i in range(25, 30))
    assert test.images.shape == (5, 512, 512, 1) and test.targets.shape == (5, 1, 512, 512)
    # 64 -> 512 is an enlargement: masks by nearest neighbour, each pixel an 8x8 block.
    expected = np.kron(labels[25] == 0, np.ones((8, 8), bool))
    np.testing.assert_array_equal(test.targets[0, 0], expected)


# --- (c) NLM tuberculosis: ChinaSet_AllFiles / MontgomerySet -----------------------------------------


def test_tb_official_cases(tmp_path):
    root = tmp_path / "tb"
    fake_tb_tree(root, ["CHNCXR_0001_0", "CHNCXR_0002_1", "MCUCXR_0001_1"])
    (root / "ChinaSet_AllFiles" / "CXR_png" / "Thumbs.db").write_bytes(b"not an image")
    loc = locate("tb-nlm", from_dir=root)
    assert loc.layout == "official"
    ds = DATASETS.get("tb-nlm")
    cases = ds.cases(loc)
    assert cases.to_dict("index") == {
        "CHNCXR_0001_0": {"source": "shenzhen", "tb": "0"},
        "CHNCXR_0002_1": {"source": "shenzhen", "tb": "1"},
        "MCUCXR_0001_1": {"source": "montgomery", "tb": "1"},
    }
    assert [ds.target(loc, c, "tb") for c in cases.index] == [0, 1, 1]
    image = ds.image(loc, "MCUCXR_0001_1")
    assert image.shape == (32, 40, 1) and image.dtype == np.uint8


def test_tb_official_rgb_and_16_bit_images_become_grey(tmp_path):
    root = tmp_path / "tb"
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 90
    save_png(root / TB_FOLDERS["CHNCXR"] / "CHNCXR_0001_0.png", rgb)
    sixteen = np.linspace(0, 4000, 64).reshape(8, 8).astype(np.uint16)
    save_png(root / TB_FOLDERS["MCUCXR"] / "MCUCXR_0001_1.png", sixteen)
    loc = locate("tb-nlm", from_dir=root)
    ds = DATASETS.get("tb-nlm")
    assert (ds.image(loc, "CHNCXR_0001_0") == 30).all()
    grey = ds.image(loc, "MCUCXR_0001_1")
    assert grey.dtype == np.uint8 and grey.min() == 0 and grey.max() == 255


def test_tb_prepare_end_to_end_on_a_full_stand_in(tmp_path, fresh_home):
    spec = get_task("tb-cxr")
    names = list(load_split(spec)["case_id"])
    assert len(names) == 800
    root = tmp_path / "tb"
    fake_tb_tree(root, names)
    prepared = prepare(spec, from_dir=root)
    assert prepared.manifest["counts"] == {"train": 543, "val": 137, "test": 120}
    assert len(prepared.manifest["raw_files"]) == 800
    for split in ("train", "val", "test"):
        data = prepared.split(split)
        assert data.images.shape == (len(data), 256, 256, 1)
        labels = [int(c[-1]) for c in data.case_ids]
        np.testing.assert_array_equal(data.targets, labels)
        sources = data.cases["case_id"].str[:6].map({"CHNCXR": "shenzhen", "MCUCXR": "montgomery"})
        assert (data.cases["source"] == sources).all()


# --- (d) Cell Tracking Challenge: <name>/01/t###.tif + 01_GT/SEG/man_seg###.tif ---------------------


def write_ctc(
    root: Path, seq: str, frames: int, seg: set[int], shape=(24, 32)
) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(int(seq))
    base = root / "PhC-C2DH-U373"
    labels_of = {}
    for t in range(frames):
        image = rng.integers(1000, 3001, size=shape).astype(np.uint16)
        image[0, 0], image[0, 1] = 1000, 3000
        (base / seq).mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(base / seq / f"t{t:03d}.tif", image)
        if t in seg:
            labels = np.zeros(shape, np.uint16)
            labels[2:8, 2:8], labels[10:20, 12:30] = 1, 2 + t
            (base / f"{seq}_GT" / "SEG").mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(base / f"{seq}_GT" / "SEG" / f"man_seg{t:03d}.tif", labels)
            labels_of[t] = labels
    return labels_of


@pytest.fixture
def ctc_official(tmp_path: Path) -> tuple[Path, dict, dict]:
    root = tmp_path / "ctc"
    seg01 = write_ctc(root, "01", 12, set(range(12)) - {3, 7})
    seg02 = write_ctc(root, "02", 5, {0, 2, 4})
    return root, seg01, seg02


def test_ctc_cases_are_frames_with_seg(ctc_official):
    root, seg01, seg02 = ctc_official
    loc = locate("ctc-u373", from_dir=root)
    assert loc.layout == "official"
    ds = DATASETS.get("ctc-u373")
    cases = ds.cases(loc)
    expected = [f"01-t{t:03d}" for t in sorted(seg01)] + [f"02-t{t:03d}" for t in sorted(seg02)]
    assert list(cases.index) == expected
    assert list(cases["sequence"]) == ["01"] * 10 + ["02"] * 3
    image = ds.image(loc, "01-t004")
    assert image.shape == (24, 32, 1) and image.dtype == np.uint8
    assert image.min() == 0 and image.max() == 255  # 16-bit min-max rescaled per frame
    raw = tifffile.imread(root / "PhC-C2DH-U373" / "01" / "t004.tif").astype(float)
    np.testing.assert_array_equal(image[:, :, 0], np.rint((raw - 1000) * 255 / 2000))
    np.testing.assert_array_equal(ds.target(loc, "02-t002", "instances"), seg02[2])


def test_ctc_prepare_splits_by_sequence(ctc_official, fresh_home):
    root, seg01, seg02 = ctc_official
    prepared = prepare("ctc-u373", from_dir=root)
    assert prepared.manifest["counts"] == {"train": 8, "val": 2, "test": 3}
    train, val, test = (prepared.split(s) for s in ("train", "val", "test"))
    assert train.case_ids == tuple(f"01-t{t:03d}" for t in (0, 1, 2, 4, 5, 6, 8, 9))
    assert val.case_ids == ("01-t010", "01-t011")  # the last 20 % of 01, contiguous
    assert test.case_ids == ("02-t000", "02-t002", "02-t004")
    assert set(val.cases["group"]) == {"01"} and set(test.cases["group"]) == {"02"}
    assert isinstance(test.images, Ragged) and isinstance(test.targets, Ragged)
    assert test.images.shapes() == [(24, 32, 1)] * 3
    np.testing.assert_array_equal(test.targets[1], seg02[2])
    np.testing.assert_array_equal(val.targets[0], seg01[10])


# --- (e) DSB 2018: stage1_train/<id>/images/<id>.png + masks/*.png ----------------------------------


def box_mask(y0, y1, x0, x1, shape=(10, 12)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture
def dsb_stand_in(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    root = tmp_path / "dsb"
    case = root / "stage1_train" / "abc123"
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., :3] = 77
    rgba[..., 3] = 255  # Kaggle's PNGs are RGBA
    save_png(case / "images" / "abc123.png", rgba)
    masks = [box_mask(1, 6, 1, 6), box_mask(4, 9, 4, 9), box_mask(0, 2, 9, 12)]
    for k, mask in enumerate(masks):
        save_png(case / "masks" / f"m{k}.png", mask.astype(np.uint8) * 255)
    colour = np.zeros((6, 8, 3), np.uint8)
    colour[..., 0] = 200
    save_png(root / "stage1_train" / "def456" / "images" / "def456.png", colour)
    save_png(root / "stage1_train" / "def456" / "masks" / "n1.png", np.full((6, 8), 255, np.uint8))
    return root, masks


def test_dsb_official_merges_masks_later_wins(dsb_stand_in):
    root, masks = dsb_stand_in
    loc = locate("dsb2018", from_dir=root)
    assert loc.layout == "official"
    ds = DATASETS.get("dsb2018")
    assert list(ds.cases(loc).index) == ["abc123", "def456"]
    labels = ds.target(loc, "abc123", "instances")
    assert labels.shape == (10, 12) and labels.dtype == np.uint16
    expected = np.zeros((10, 12), np.uint16)
    for k, mask in enumerate(masks, start=1):
        expected[mask] = k
    np.testing.assert_array_equal(labels, expected)
    assert labels[4, 4] == 2  # the overlap of masks 1 and 2 goes to the later one
    image = ds.image(loc, "abc123")
    assert image.shape == (10, 12, 3) and (image == 77).all()  # alpha dropped
    assert ds.case_types(loc, ["abc123", "def456"]) == ["12x10-grey", "8x6-colour"]


def test_dsb_official_case_without_masks(dsb_stand_in):
    root, _ = dsb_stand_in
    for mask in (root / "stage1_train" / "def456" / "masks").iterdir():
        mask.unlink()
    loc = locate("dsb2018", from_dir=root)
    with pytest.raises(DataNotFoundError, match="no nucleus masks for def456"):
        DATASETS.get("dsb2018").target(loc, "def456", "instances")


# --- (f) Messidor-2: messidor_data.csv + IMAGES/ ---------------------------------------------------


def fundus(height: int, width: int, radius: int, *, cy: int | None = None) -> np.ndarray:
    """A bright disc on a black background, as a fundus photograph."""
    yy, xx = np.mgrid[0:height, 0:width]
    cy = height // 2 if cy is None else cy
    disc = (yy - cy) ** 2 + (xx - width // 2) ** 2 <= radius**2
    image = np.zeros((height, width, 3), np.uint8)
    image[disc] = (180, 90, 40)
    return image


def test_crop_to_fundus_crops_a_disc_to_its_square():
    image = fundus(60, 100, 20)
    out = crop_to_fundus(image)
    assert out.shape == (41, 41, 3)
    np.testing.assert_array_equal(out, image[10:51, 30:71])


def test_crop_to_fundus_pads_a_cut_disc_to_a_square():
    image = fundus(40, 100, 30)  # the disc is cut at the top and bottom, as in many cameras
    out = crop_to_fundus(image)
    assert out.shape == (61, 61, 3)
    assert (out[:10] == 0).all() and (out[-11:] == 0).all()  # black padding above and below
    np.testing.assert_array_equal(out[10:50], image[:, 20:81])


def test_crop_to_fundus_of_a_black_image_is_unchanged():
    image = np.zeros((5, 9, 3), np.uint8)
    assert crop_to_fundus(image) is image


MESSIDOR_CSV = """image_id,adjudicated_dr_grade,adjudicated_dme,adjudicated_gradable
20051020_43808_0100_PP.png,0,0,1
20051020_43832_0100_PP.png,3,1,1
IM000001.JPG,2,0,1
IM000002.JPG,,,0
"""


@pytest.fixture
def messidor_official(tmp_path: Path) -> Path:
    root = tmp_path / "messidor"
    root.mkdir()
    (root / "messidor_data.csv").write_text(MESSIDOR_CSV)
    for name in (
        "20051020_43808_0100_PP.PNG",
        "20051020_43832_0100_PP.PNG",
        "IM000001.JPG",
        "IM000002.JPG",
    ):
        image = Image.fromarray(fundus(60, 90, 25))
        (root / "IMAGES").mkdir(exist_ok=True)
        image.save(
            root / "IMAGES" / name, format="PNG" if name.endswith(".PNG") else "JPEG", quality=95
        )
    return root


def test_messidor_official_cases_drop_ungradable(messidor_official):
    loc = locate("messidor2", from_dir=messidor_official)
    assert loc.layout == "official"
    ds = DATASETS.get("messidor2")
    cases = ds.cases(loc)
    assert list(cases.index) == ["20051020_43808_0100_PP", "20051020_43832_0100_PP", "IM000001"]
    assert list(cases["dr_grade"]) == ["0", "3", "2"]
    assert [ds.target(loc, c, "referable") for c in cases.index] == [0, 1, 1]
    assert [ds.target(loc, c, "grade") for c in cases.index] == [0, 3, 2]


def test_messidor_official_images_in_upper_case_files_are_cropped(messidor_official):
    loc = locate("messidor2", from_dir=messidor_official)
    ds = DATASETS.get("messidor2")
    for case in ("20051020_43808_0100_PP", "IM000001"):
        image = ds.image(loc, case)
        assert image.shape == (51, 51, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(
        ds.image(loc, "20051020_43808_0100_PP"), crop_to_fundus(fundus(60, 90, 25))
    )
    assert "IMAGES/20051020_43808_0100_PP.PNG" in loc.read


def test_messidor_official_missing_image_is_named(messidor_official):
    (messidor_official / "IMAGES" / "IM000001.JPG").unlink()
    loc = locate("messidor2", from_dir=messidor_official)
    with pytest.raises(DataNotFoundError, match=r"missing Messidor-2 image IM000001\.JPG"):
        DATASETS.get("messidor2").image(loc, "IM000001")


def test_messidor_official_table_without_a_column_is_refused(messidor_official):
    table = pd.read_csv(messidor_official / "messidor_data.csv").drop(
        columns="adjudicated_gradable"
    )
    table.to_csv(messidor_official / "messidor_data.csv", index=False)
    loc = locate("messidor2", from_dir=messidor_official)
    with pytest.raises(DataError, match=r"lacks column\(s\) \['adjudicated_gradable'\]"):
        DATASETS.get("messidor2").cases(loc)


@pytest.mark.parametrize("column", ["image", "source_name", "dr_grade", "gradable"])
def test_messidor_mirror_table_without_a_column_is_refused(tmp_path, column):
    root = tmp_path / "messidor2"
    (root / "images").mkdir(parents=True)
    table = pd.DataFrame(
        {
            "image": ["a.jpg"],
            "source_name": ["a.png"],
            "dr_grade": ["1"],
            "dme": ["0"],
            "gradable": ["1"],
        }
    )
    table.drop(columns=column).to_csv(root / "messidor2.csv", index=False)
    loc = locate("messidor2", from_dir=tmp_path)
    assert loc.layout == "mirror"
    with pytest.raises(DataError, match=rf"lacks column\(s\) \['{column}'\]"):
        DATASETS.get("messidor2").cases(loc)
