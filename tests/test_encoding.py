import numpy as np
import pytest

from dtm_lite.encoding import Palette, decode, encode, encode_binary, encode_thermometer, n_bits


def test_binary_layout_pixel_major_channel_minor():
    f = np.zeros((2, 3, 2), np.uint8)
    f[0, 1, 1] = 255
    bits = encode_binary(f)
    assert bits.shape == (12,)
    assert np.flatnonzero(bits).tolist() == [(0 * 3 + 1) * 2 + 1]


def test_dtype_decides_scale_not_values():
    f8 = np.full((1, 1, 1), 1, np.uint8)  # 1/255: below threshold
    ff = np.full((1, 1, 1), 1.0, np.float32)  # 1.0: above threshold
    assert encode_binary(f8)[0] == 0 and encode_binary(ff)[0] == 1


def test_thermometer_round_trip():
    levels = 4
    v = np.arange(levels + 1, dtype=np.float32) / levels
    f = v.reshape(1, -1, 1)
    bits = encode_thermometer(f, levels)
    assert bits.reshape(-1, levels).tolist() == [[int(q > t) for t in range(levels)] for q in range(levels + 1)]
    assert np.allclose(decode(bits, (1, levels + 1, 1), levels), f)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    dec = decode(encode(x, 3), (4, 4, 3), 3)
    assert np.abs(dec - x / 255).max() <= 1 / 6 + 1e-6
    assert n_bits((4, 4, 3), 3) == encode(x, 3).shape[-1]


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


def test_bad_decode_length():
    with pytest.raises(ValueError, match="expected 8 bits"):
        decode(np.zeros(7), (2, 2, 1), 2)


@pytest.mark.parametrize("code", ["onehot", "binary"])
def test_palette_round_trip(code):
    pal = Palette.lunarlander(code)
    cols = (np.asarray(pal.colors) * 255).round().astype(np.uint8)
    img = cols[np.array([[0, 1], [2, 3]])]
    bits = pal.encode(img)
    assert bits.shape == (4 * pal.bits_per_pixel,)
    assert np.allclose(pal.decode(bits, (2, 2)), img / 255, atol=1 / 255)
    assert pal.bits_per_pixel == (4 if code == "onehot" else 2)
