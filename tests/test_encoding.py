import numpy as np
import pytest

from dtm_lite.core.encoding import Encoding, decode, encode
from dtm_lite.data.lunarlander_settings import palette as lunarlander_palette


def test_binary_layout_pixel_major_channel_minor():
    f = np.zeros((2, 3, 2), np.uint8)
    f[0, 1, 1] = 255
    bits = encode(f)
    assert bits.shape == (12,)
    assert np.flatnonzero(bits).tolist() == [(0 * 3 + 1) * 2 + 1]


def test_dtype_decides_scale_not_values():
    f8 = np.full((1, 1, 1), 1, np.uint8)  # 1/255: below threshold
    ff = np.full((1, 1, 1), 1.0, np.float32)  # 1.0: above threshold
    assert encode(f8)[0] == 0 and encode(ff)[0] == 1


def test_thermometer_round_trip():
    levels = 4
    v = np.arange(levels + 1, dtype=np.float32) / levels
    f = v.reshape(1, -1, 1)
    bits = encode(f, levels)
    # value q / L lights the first q of its L bits
    assert bits.tolist() == [0, 0, 0, 0] + [1, 0, 0, 0] + [1, 1, 0, 0] + [1, 1, 1, 0] + [1, 1, 1, 1]
    # rounding to the nearest level: 0.1 -> 0, 0.2 -> 1 (0.8 / 4), 0.6 -> 2 (2.4 / 4), 0.9 -> 4 (3.6 / 4)
    near = encode(np.array([0.1, 0.2, 0.6, 0.9], np.float32).reshape(1, 4, 1), levels)
    assert near.tolist() == [0, 0, 0, 0] + [1, 0, 0, 0] + [1, 1, 0, 0] + [1, 1, 1, 1]
    assert np.allclose(decode(bits, (1, levels + 1, 1), levels), f)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    dec = decode(encode(x, 3), (4, 4, 3), 3)
    assert np.abs(dec - x / 255).max() <= 1 / 6 + 1e-6
    assert Encoding("thermometer", (4, 4, 3), 3).n_bits == encode(x, 3).shape[-1]


def test_decode_accepts_spins():
    bits = np.array([[1, 0, 1, 1]])
    assert np.array_equal(decode(2 * bits - 1, (2, 2, 1)), decode(bits, (2, 2, 1)))


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.full((2, 2, 1), np.nan, np.float32), "NaN"),
        (np.full((2, 2, 1), 1.5, np.float32), r"\[0, 1\]"),
        (np.zeros((4, 4), np.uint8), "shape \\(..., H, W, C\\)"),
        (np.zeros((2, 2, 1), np.int32), "dtype int32"),
    ],
)
def test_bad_frames(frames, match):
    with pytest.raises(ValueError, match=match):
        encode(frames)


def test_bad_levels_name_the_argument():
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="^levels must be an integer >= 1"):
            encode(np.zeros((2, 2, 1), np.uint8), bad)
        with pytest.raises(ValueError, match="^levels must be an integer >= 1"):
            decode(np.zeros(4), (2, 2, 1), bad)


def test_bad_decode_length():
    with pytest.raises(ValueError, match="expected 8 bits"):
        decode(np.zeros(7), (2, 2, 1), 2)


@pytest.mark.parametrize("code", ["onehot", "binary"])
def test_palette_round_trip(code):
    pal = lunarlander_palette(code)
    cols = (np.asarray(pal.colors) * 255).round().astype(np.uint8)
    img = cols[np.array([[0, 1], [2, 3]])]
    bits = pal.encode(img)
    assert bits.shape == (4 * pal.bits_per_pixel,)
    assert np.allclose(pal.decode(bits, (2, 2)), img / 255, atol=1 / 255)
    assert pal.bits_per_pixel == (4 if code == "onehot" else 2)


def lunarlander_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A uint8 (h, w, 3) image of random LunarLander palette colours."""
    cols = (np.asarray(lunarlander_palette().colors) * 255).round().astype(np.uint8)
    return cols[np.random.default_rng(seed).integers(0, len(cols), (h, w))]


@pytest.mark.parametrize("code, bpp", [("binary", 2), ("onehot", 4)])
def test_palette_encoding_round_trip_on_lunarlander_colours(code, bpp):
    enc = Encoding("palette", (32, 32, 3), palette=lunarlander_palette(code))
    img = lunarlander_image(32, 32)
    bits = enc.encode(img[None])
    assert bits.shape == (1, 32 * 32 * bpp) and enc.n_bits == 32 * 32 * bpp and enc.bits_per_pixel == bpp
    assert np.abs(enc.decode(bits)[0] - img / 255).max() < 1e-6  # every colour comes back exactly
    assert np.array_equal(enc.decode(2 * bits.astype(np.int8) - 1), enc.decode(bits))  # ±1 spins decode too
    # a pixel's bits are its own: bits [p*bpp, (p+1)*bpp) change only when pixel p changes colour
    other = img.copy()
    other[3, 5] = img[3, 5] ^ 255 if img[3, 5].tolist() in ([0, 0, 0], [255, 255, 255]) else 255
    diff = np.flatnonzero(enc.encode(other) != bits[0])
    p = 3 * 32 + 5
    assert diff.size and set(diff.tolist()) <= set(range(p * bpp, (p + 1) * bpp))
    # without the binarisation, off-palette colours go to the nearest palette colour
    plain = Encoding("palette", (32, 32, 3), palette=lunarlander_palette(code, threshold=None))
    noisy = np.clip(img.astype(np.int16) + np.random.default_rng(1).integers(-30, 31, img.shape), 0, 255)
    assert np.array_equal(plain.encode(noisy.astype(np.uint8)), bits[0])


def test_palette_threshold_keeps_blends_out_of_the_lander_colour():
    """Area-resized frames blend colours: sky/terrain greys must not become the mid-tone purple lander
    (plain nearest-colour does exactly that), while the lander blended with black sky stays lander."""
    black, white, purple, yellow = (np.asarray(c) for c in lunarlander_palette().colors)
    cov = np.linspace(0, 1, 21)[:, None]
    greys = cov * white  # terrain edge over sky, any coverage
    lander = np.vstack([0.6 * purple + 0.4 * black, purple, 0.7 * purple + 0.3 * black])
    flags = np.vstack([yellow, 0.7 * yellow + 0.3 * black])
    pixels = np.vstack([greys, lander, flags]).astype(np.float32)[None, :, None, :]  # (1, n, 1, 3)
    idx = lunarlander_palette().indices(pixels)[0, :, 0]
    assert set(idx[: len(greys)].tolist()) == {0, 1}  # sky or terrain, never lander or flag
    assert idx[len(greys) : len(greys) + 3].tolist() == [2, 2, 2]
    assert idx[-2:].tolist() == [3, 3]
    assert 2 in lunarlander_palette(threshold=None).indices(pixels)[0, : len(greys), 0]  # the failure it prevents


def test_encoding_matches_the_formulas():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 4, 5, 2), dtype=np.uint8)
    v = x.astype(np.float32) / np.float32(255)
    binary, thermo = Encoding("binary", (4, 5, 2), threshold=0.3), Encoding("thermometer", (4, 5, 2), levels=3)
    assert np.array_equal(binary.encode(x), (v > 0.3).reshape(3, -1)) and binary.bits_per_pixel == 2
    expected = (np.rint(v * 3)[..., None] > np.arange(3)).reshape(3, -1)  # b_t = [round(3 v) > t]
    assert np.array_equal(thermo.encode(x), expected) and thermo.n_bits == 4 * 5 * 2 * 3
    assert np.array_equal(thermo.encode(x), encode(x, 3)) and np.array_equal(binary.encode(x), encode(x, 1, 0.3))
    assert np.array_equal(thermo.decode(expected), np.rint(v * 3) / 3)
    assert thermo.capacity_counts == (4 * 5 * 2, 3, "pixel values")
    pal = Encoding("palette", (4, 5, 3), palette=lunarlander_palette())
    assert pal.capacity_counts == (4 * 5, 2, "pixels")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "gray"}, "encoding must be one of \\('binary', 'thermometer', 'palette'\\)"),
        ({"kind": "binary", "levels": 4}, "use encoding='thermometer'"),
        ({"kind": "palette"}, "needs palette="),
        ({"kind": "palette", "palette": lunarlander_palette(), "image_shape": (4, 4, 1)}, "needs RGB frames"),
    ],
)
def test_encoding_errors_name_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Encoding(**{"image_shape": (4, 4, 3), **kwargs})
    enc = Encoding("palette", (4, 4, 3), palette=lunarlander_palette())
    with pytest.raises(ValueError, match="expects \\(H, W, C\\) = \\(4, 4, 3\\)"):
        enc.encode(np.zeros((4, 4, 1), np.uint8))
    with pytest.raises(ValueError, match="expected 32 bits"):
        enc.decode(np.zeros(48))
