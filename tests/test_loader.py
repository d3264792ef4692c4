"""IteratorDataLoader: batching across items, item kinds, partial batches, shuffling, errors."""

from __future__ import annotations

import numpy as np
import pytest

from dtm_lite.core.encoding import encode
from dtm_lite.data.loader import IteratorDataLoader
from dtm_lite.data.lunarlander_settings import palette as lunarlander_palette

N_ID_BITS = 8  # frame k is a (1, 8, 1) uint8 image holding k in binary, so its bits spell k


def frame(k: int) -> np.ndarray:
    """(1, 8, 1) uint8 frame whose binary encoding is the 8 bits of k (least significant first)."""
    return ((k >> np.arange(N_ID_BITS)) & 1).astype(np.uint8).reshape(1, N_ID_BITS, 1) * 255


def stack(ks) -> np.ndarray:
    return np.stack([frame(k) for k in ks])


def ids(batch: np.ndarray) -> list[int]:
    """Frame ids of a bit batch (rows of 8 bits)."""
    return [int(v) for v in batch.astype(np.int64) @ (1 << np.arange(N_ID_BITS))]


def all_ids(loader) -> list[list[int]]:
    return [ids(b) for b in loader]


def episodes(n_items: int, per_item: int = 3) -> list[np.ndarray]:
    return [stack(range(i * per_item, (i + 1) * per_item)) for i in range(n_items)]


def test_batches_cross_item_boundaries_in_order():
    loader = IteratorDataLoader(episodes(4), batch_size=4)
    batches = list(loader)
    assert all(b.dtype == np.uint8 and b.shape == (4, N_ID_BITS) for b in batches)
    assert [ids(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_bits_match_encode():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    loader = IteratorDataLoader([frames], batch_size=3, n_grayscale_levels=4)
    out = list(loader)
    np.testing.assert_array_equal(np.concatenate(out), encode(frames, 4))
    assert loader.image_shape == (4, 5, 3) and loader.n_bits == 4 * 5 * 3 * 4
    assert out[0].shape == (3, loader.n_bits)


def test_single_frames_tuples_and_mixed_items():
    items = [frame(0), (stack([1, 2]), np.zeros(2), np.zeros(2)), (frame(3),), stack([4, 5, 6])]
    assert all_ids(IteratorDataLoader(items, batch_size=2, drop_last=False)) == [[0, 1], [2, 3], [4, 5], [6]]


def test_float_and_uint8_frames_agree():
    items = [frame(5).astype(np.float32) / 255, frame(9)]
    assert all_ids(IteratorDataLoader(items, batch_size=2)) == [[5, 9]]


@pytest.mark.parametrize(
    "drop_last, expected",
    [(True, [[0, 1, 2, 3], [4, 5, 6, 7]]), (False, [[0, 1, 2, 3], [4, 5, 6, 7], [8]])],
)
def test_partial_batch_policy(drop_last, expected):
    assert all_ids(IteratorDataLoader(episodes(3), batch_size=4, drop_last=drop_last)) == expected


def test_max_batches_per_epoch_and_lazy_pull():
    pulled = []

    def endless():
        k = 0
        while True:
            pulled.append(k)
            yield stack(range(3 * k, 3 * k + 3))
            k += 1

    loader = IteratorDataLoader(endless(), batch_size=4, max_batches_per_epoch=2)
    assert all_ids(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(pulled) == 3  # 8 frames need 3 items of 3; nothing read ahead
    # a one-shot iterator resumes at the next item (the rest of item 2, frame 8, was discarded)
    assert all_ids(loader) == [[9, 10, 11, 12], [13, 14, 15, 16]]


def test_reiterable_source_restarts_each_epoch():
    loader = IteratorDataLoader(episodes(3), batch_size=4)
    assert all_ids(loader) == all_ids(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffle_is_seeded_permutation():
    src = episodes(10)  # 30 frames
    plain = [k for b in all_ids(IteratorDataLoader(src, batch_size=5)) for k in b]
    a = all_ids(IteratorDataLoader(src, batch_size=5, shuffle_buffer=8, seed=1))
    b = all_ids(IteratorDataLoader(src, batch_size=5, shuffle_buffer=8, seed=1))
    c = all_ids(IteratorDataLoader(src, batch_size=5, shuffle_buffer=8, seed=2))
    flat = [k for batch in a for k in batch]
    assert a == b
    assert a != c
    assert flat != plain and sorted(flat) == plain == list(range(30))


def test_shuffle_epochs_differ_but_are_reproducible():
    src = episodes(10)
    loader = IteratorDataLoader(src, batch_size=5, shuffle_buffer=8, seed=3)
    e0, e1 = all_ids(loader), all_ids(loader)
    again = IteratorDataLoader(src, batch_size=5, shuffle_buffer=8, seed=3)
    assert e0 != e1 and [e0, e1] == [all_ids(again), all_ids(again)]


def test_shuffle_buffer_larger_than_stream_keeps_everything():
    out = all_ids(IteratorDataLoader(episodes(2), batch_size=2, shuffle_buffer=100, drop_last=False))
    assert sorted(k for b in out for k in b) == list(range(6))


def test_image_preprocessing_is_applied():
    def invert(frames):
        return 255 - frames

    out = all_ids(IteratorDataLoader([stack([0, 3])], batch_size=2, image_preprocessing=invert))
    assert out == [[255, 252]]


def test_n_bits_unknown_before_first_item():
    loader = IteratorDataLoader(episodes(1), batch_size=2)
    assert loader.image_shape is None
    with pytest.raises(ValueError, match="image_shape"):
        _ = loader.n_bits
    assert IteratorDataLoader([], batch_size=2, image_shape=(2, 3, 1), n_grayscale_levels=2).n_bits == 12


def test_empty_stream_gives_no_batches():
    assert list(IteratorDataLoader([], batch_size=2, drop_last=False)) == []


# -- errors name the item (and frame) -----------------------------------------------------------------------


def bad_stream(bad_item, position: int = 2):
    items = [stack([0, 1, 2]) for _ in range(4)]
    items[position] = bad_item
    return items


def first_error(items, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        list(IteratorDataLoader(items, batch_size=2, **kwargs))
    return str(info.value)


def test_error_shape_mismatch_names_both_shapes():
    msg = first_error(bad_stream(np.zeros((3, 2, 8, 1), np.uint8)))
    assert "stream item 2" in msg and "frame 0" in msg and "(2, 8, 1)" in msg and "(1, 8, 1)" in msg


def test_error_declared_image_shape():
    msg = first_error(bad_stream(stack([1])), image_shape=(2, 2, 1))
    assert "stream item 0" in msg and "(2, 2, 1)" in msg


def test_error_nan_and_inf_name_the_frame():
    bad = np.zeros((3, 1, 8, 1), np.float32)
    bad[1, 0, 3, 0] = np.nan
    msg = first_error(bad_stream(bad))
    assert "stream item 2, frame 1" in msg and "NaN" in msg
    bad[1, 0, 3, 0] = 0
    bad[2, 0, 0, 0] = np.inf
    assert "stream item 2, frame 2" in first_error(bad_stream(bad))


def test_error_float_out_of_range():
    bad = np.zeros((3, 1, 8, 1), np.float64)
    bad[0, 0, 0, 0] = 255.0
    msg = first_error(bad_stream(bad, position=1))
    assert "stream item 1, frame 0" in msg and "[0, 1]" in msg and "255" in msg


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.int8, np.bool_])
def test_error_non_uint8_integers_rejected_with_advice(dtype):
    msg = first_error(bad_stream(np.zeros((3, 1, 8, 1), dtype), position=3))
    assert "stream item 3" in msg and str(np.dtype(dtype)) in msg and "astype" in msg


@pytest.mark.parametrize("shape", [(8,), (1, 8), (1, 1, 1, 8, 1)])
def test_error_wrong_rank(shape):
    msg = first_error(bad_stream(np.zeros(shape, np.uint8), position=1))
    assert "stream item 1" in msg and "rank" in msg and str(shape) in msg


def test_error_in_tuple_item_and_empty_tuple():
    bad = np.full((2, 1, 8, 1), -0.5, np.float32)
    assert "stream item 0, frame 0" in first_error([(bad, np.zeros(2))])
    assert "stream item 1" in first_error([frame(0), ()])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": 2, "n_grayscale_levels": 0},
        {"batch_size": 2, "max_batches_per_epoch": 0},
        {"batch_size": 2, "shuffle_buffer": -1},
        {"batch_size": 2, "threshold": 1.0},
        {"batch_size": 2, "image_preprocessing": 3},
        {"batch_size": 2, "image_shape": (2, 2)},
    ],
)
def test_argument_validation(kwargs):
    with pytest.raises(ValueError):
        IteratorDataLoader([], **kwargs)


def test_non_iterable_source_rejected():
    with pytest.raises(ValueError, match="iterable"):
        IteratorDataLoader(3, batch_size=2)


def test_frames_pass_through_or_use_the_models_encoding():
    from dtm_lite.core.encoding import Encoding

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    raw = list(IteratorDataLoader([frames], batch_size=3, encode=False))
    assert [b.shape for b in raw] == [(3, 4, 5, 3)] * 2 and np.array_equal(np.concatenate(raw), frames)
    enc = Encoding("palette", (4, 5, 3), palette=lunarlander_palette("onehot"))
    loader = IteratorDataLoader([frames], batch_size=3, encoding=enc)
    assert loader.image_shape == (4, 5, 3) and loader.n_bits == 4 * 5 * 4
    np.testing.assert_array_equal(np.concatenate(list(loader)), enc.encode(frames))
    with pytest.raises(ValueError, match="has shape \\(4, 5, 3\\) but this loader's frames have shape \\(4, 6, 3\\)"):
        list(IteratorDataLoader([frames], batch_size=3, encoding=Encoding("binary", (4, 6, 3))))
    with pytest.raises(ValueError, match="not both"):
        IteratorDataLoader([frames], batch_size=3, encoding=enc, n_grayscale_levels=2)
    with pytest.raises(ValueError, match="yields frames"):
        _ = IteratorDataLoader([frames], batch_size=3, encode=False).n_bits
