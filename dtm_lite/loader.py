"""Streaming batches of bits from an iterator of frames, for training without a dataset in memory.

``IteratorDataLoader`` pulls items from a stream, splits them into frames, optionally shuffles them in a
bounded buffer, and yields uint8 bit batches ``(batch_size, n_bits)``: encoded with a model's own encoding
(``encoding=dtm.encoding``: binary, thermometer or palette), with ``n_grayscale_levels``/``threshold``
(``dtm_lite.encoding.encode``), or not at all (``encode=False``: frame batches ``(batch_size, H, W, C)``, which
``DTM.train_from_iterator`` encodes with the model's encoding).

A stream item is one of
- a frame ``(H, W, C)``,
- a stack of frames ``(n, H, W, C)`` (every frame is used, in order),
- a tuple whose first element is one of the above, e.g. ``(frames, actions, rewards)`` from
  ``dtm_lite.lunarlander.LunarLanderFrames`` (the other elements are ignored). A tuple with frames in a later
  element too (``zip`` of two frame streams) is refused rather than half dropped.

Items with a dimension of size 0 (zero-size frames, stacks of no frames) are refused.

Frames are uint8 in [0, 255] or floats in [0, 1]; every frame must have the shape of the first one.
At most ``shuffle_buffer + batch_size`` frames (plus the item being read) are held at any time.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import numpy as np

from dtm_lite.encoding import Encoding, encode
from dtm_lite.validation import check_int

Preprocess = Callable[[np.ndarray], np.ndarray]


class IteratorDataLoader:
    """Batches of bits ``(batch_size, n_bits)`` uint8 from a stream of frames; one ``iter()`` is one epoch.

    Args:
        data_iterator: an iterable of stream items (see the module docstring). A re-iterable source (a list,
            ``LunarLanderFrames``) starts over every epoch; a one-shot iterator (a generator) is continued
            where the previous epoch stopped and, once exhausted, gives empty epochs.
        batch_size: frames per batch.
        n_grayscale_levels: bits per channel value L (1 = binary threshold, L > 1 = thermometer code).
        max_batches_per_epoch: stop an epoch after this many batches (None = run until the stream ends).
        image_preprocessing: optional ``f(frames (n, H, W, C)) -> frames (n', H', W', C')`` applied to each
            item's stack of frames before validation; error positions then refer to its output.
        threshold: binary threshold on values in [0, 1] (used when L = 1).
        drop_last: what to do with the final partial batch when the stream ends: True drops it (every
            batch has exactly ``batch_size`` rows), False yields it with fewer rows.
        shuffle_buffer: size k of a seeded shuffle buffer (0 = stream order). The first k frames fill it;
            then each incoming frame swaps out a uniformly chosen buffered frame, which is emitted; at the
            end of the stream the rest comes out in random order. Every frame is emitted exactly once, and
            frames move at most about k positions: mixing is local, so make k span several episodes.
        seed: seed of the shuffle; epoch t uses ``np.random.default_rng([seed, t])``.
        image_shape: optional expected (H, W, C); otherwise it is taken from the first frame (or ``encoding``).
        encoding: a model's :class:`~dtm_lite.encoding.Encoding` (``dtm.encoding``) to encode with instead of
            ``n_grayscale_levels``/``threshold``; the only way to get palette bits, and a guarantee that the bits
            match the model.
        encode: False yields the frames themselves, ``(batch_size, H, W, C)`` (uint8, or float32 in [0, 1] when
            the stream mixes dtypes), for ``DTM.train_from_iterator`` to encode with the model's encoding.

    An epoch that stops at ``max_batches_per_epoch`` discards what it had read but not batched (the rest
    of the current item, the shuffle buffer); a one-shot iterator then resumes at the next item.
    """

    def __init__(
        self,
        data_iterator: Iterable[Any],
        batch_size: int,
        n_grayscale_levels: int = 1,
        max_batches_per_epoch: int | None = None,
        image_preprocessing: Preprocess | None = None,
        threshold: float = 0.5,
        drop_last: bool = True,
        shuffle_buffer: int = 0,
        seed: int = 0,
        image_shape: tuple[int, int, int] | None = None,
        encoding: Encoding | None = None,
        encode: bool = True,
    ):
        batch_size = check_int("batch_size", batch_size, 1)
        n_grayscale_levels = check_int("n_grayscale_levels", n_grayscale_levels, 1)
        if max_batches_per_epoch is not None:
            max_batches_per_epoch = check_int("max_batches_per_epoch", max_batches_per_epoch, 1)
        shuffle_buffer = check_int("shuffle_buffer", shuffle_buffer, 0)
        seed = check_int("seed", seed, 0)
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must lie in [0, 1), got {threshold!r}")
        if image_preprocessing is not None and not callable(image_preprocessing):
            raise ValueError(f"image_preprocessing must be a callable frames -> frames, got {image_preprocessing!r}")
        if not isinstance(data_iterator, Iterable):
            raise ValueError(
                f"data_iterator must be an iterable of frames, got {type(data_iterator).__name__}; "
                "wrap a single array in a list"
            )
        if image_shape is not None:
            sizes = tuple(int(v) for v in image_shape)
            if len(sizes) != 3 or min(sizes) < 1:
                raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {sizes}")
            image_shape = sizes
        if encoding is not None:
            if not isinstance(encoding, Encoding):
                raise ValueError(f"encoding must be a dtm_lite.encoding.Encoding (e.g. dtm.encoding), got {encoding!r}")
            if n_grayscale_levels != 1 or threshold != 0.5:
                raise ValueError(
                    "pass either encoding= (the model's dtm.encoding) or n_grayscale_levels/threshold, not both"
                )
            if not encode:
                raise ValueError("encode=False yields frames, so an encoding would be unused; pass one or the other")
            if image_shape is not None and image_shape != encoding.image_shape:
                raise ValueError(
                    f"image_shape {image_shape} differs from the encoding's {encoding.image_shape}; they must agree"
                )
            image_shape = encoding.image_shape
        self.data_iterator = data_iterator
        self.batch_size = batch_size
        self.n_grayscale_levels = n_grayscale_levels
        self.max_batches_per_epoch = max_batches_per_epoch
        self.image_preprocessing = image_preprocessing
        self.threshold = threshold
        self.drop_last = drop_last
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.encoding = encoding
        self.encode = bool(encode)
        self._image_shape: tuple[int, int, int] | None = image_shape
        self._epoch = 0
        self._item_index = 0  # position in the stream, counted across epochs for one-shot iterators

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """(H, W, C) of the frames: given, or known after the first item; None before that."""
        return self._image_shape

    @property
    def n_bits(self) -> int:
        """Bits per frame: the encoding's, else ``H * W * C * L``; raises if the image shape is not known yet."""
        if not self.encode:
            raise ValueError("this loader yields frames (encode=False), not bits; the model encodes them")
        if self.encoding is not None:
            return self.encoding.n_bits
        if self._image_shape is None:
            raise ValueError(
                "n_bits is unknown until the first item has been read; iterate once or pass image_shape=(H, W, C)"
            )
        h, w, c = self._image_shape
        return h * w * c * self.n_grayscale_levels

    def __iter__(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, self._epoch])
        self._epoch += 1
        if not isinstance(self.data_iterator, Iterator):
            self._item_index = 0  # a fresh pass over a re-iterable source
        frames = self._frames()
        if self.shuffle_buffer > 0:
            frames = _shuffled(frames, self.shuffle_buffer, rng)
        return self._batches(frames)

    # -- stream -> frames ---------------------------------------------------------------------------------

    def _frames(self) -> Generator[np.ndarray, None, None]:
        """Validated frames ``(H, W, C)``, one at a time, copied so the item can be freed."""
        for item in self.data_iterator:
            position = self._item_index
            self._item_index += 1
            stack = self._as_stack(item, position)
            for j in range(len(stack)):
                yield np.array(stack[j])

    def _as_stack(self, item: Any, position: int) -> np.ndarray:
        """One stream item as a validated stack ``(n, H, W, C)``."""
        where = f"stream item {position}"
        if isinstance(item, tuple):
            if not item:
                raise ValueError(f"{where} is an empty tuple; yield frames or (frames, ...) tuples")
            _check_tuple(item, where)
            item = item[0]
        arr = np.asarray(item)
        if arr.ndim == 3:
            arr = arr[None]
        elif arr.ndim != 4:
            raise ValueError(
                f"{where} has shape {arr.shape} (rank {arr.ndim}); expected a frame (H, W, C) or a stack "
                "(n, H, W, C); add a channel axis to grayscale images with x[..., None]"
            )
        if arr.size == 0:
            what = "a stack of no frames" if arr.shape[0] == 0 and min(arr.shape[1:]) > 0 else "zero-size frames"
            raise ValueError(
                f"{where} has shape {np.shape(item)}: {what} (a dimension of 0); every item must hold at least one "
                "frame of positive height, width and channels; check the source (an empty episode, a bad crop?)"
            )
        if self.image_preprocessing is not None:
            arr = np.asarray(self.image_preprocessing(arr))
            if arr.ndim != 4:
                raise ValueError(
                    f"{where}: image_preprocessing returned shape {arr.shape}; it must return a stack (n, H, W, C)"
                )
            if min(arr.shape[1:]) == 0:
                raise ValueError(
                    f"{where}: image_preprocessing returned zero-size frames, shape {arr.shape} (a dimension of 0); "
                    "frames must have positive height, width and channels"
                )
        _check_values(arr, where)
        if self._image_shape is None:
            _, h, w, c = arr.shape
            self._image_shape = (int(h), int(w), int(c))
        if arr.shape[1:] != self._image_shape:
            raise ValueError(
                f"{where}, frame 0 has shape {arr.shape[1:]} but this loader's frames have shape "
                f"{self._image_shape} (from image_shape, the encoding or the first frame); resize or crop frames "
                "to that shape (e.g. with image_preprocessing)"
            )
        return arr

    # -- frames -> batches --------------------------------------------------------------------------------

    def _batches(self, frames: Generator[np.ndarray, None, None]) -> Iterator[np.ndarray]:
        n_out = 0
        batch: list[np.ndarray] = []
        try:
            for frame in frames:
                batch.append(frame)
                if len(batch) == self.batch_size:
                    yield self._encode(batch)
                    batch = []
                    n_out += 1
                    if self.max_batches_per_epoch is not None and n_out >= self.max_batches_per_epoch:
                        return
            if batch and not self.drop_last:
                yield self._encode(batch)
        finally:
            frames.close()  # stops a re-iterable source's pass now (e.g. closes its environments)

    def _encode(self, batch: list[np.ndarray]) -> np.ndarray:
        """Frames -> uint8 bits ``(len(batch), n_bits)`` (or the frames ``(len(batch), H, W, C)`` with
        ``encode=False``); mixed dtypes go through float32 in [0, 1]."""
        if all(f.dtype == np.uint8 for f in batch):
            stack = np.stack(batch)
        else:
            stack = np.stack([f.astype(np.float32) / 255.0 if f.dtype == np.uint8 else f for f in batch])
        if not self.encode:
            return stack
        if self.encoding is not None:
            return self.encoding.encode(stack)
        return encode(stack, self.n_grayscale_levels, self.threshold)


def _check_tuple(item: tuple, where: str) -> None:
    """Refuse a tuple with frames beyond element 0 (e.g. ``zip`` of two frame streams): only element 0 is
    read, so the others would be dropped silently. Frames there are arrays of rank 3 or 4 whose last three
    sizes are those of element 0's frames; ``(frames, actions, rewards)`` passes."""
    first = np.shape(item[0])
    if len(first) not in (3, 4):
        return  # element 0 itself is refused with its shape
    for j, other in enumerate(item[1:], 1):
        shape = np.shape(other) if isinstance(other, np.ndarray) or hasattr(other, "__array__") else ()
        if len(shape) in (3, 4) and shape[-3:] == first[-3:]:
            raise ValueError(
                f"{where} is a tuple whose elements 0 and {j} are both frames of shape {first[-3:]} (shapes {first} "
                f"and {shape}); a tuple is read as (frames, other data, ...) and only element 0 is used, so the "
                "other frames would be dropped (a zip of two streams?); yield the frames one after the other "
                "(itertools.chain) or stack them (np.concatenate) instead"
            )


def _shuffled(frames: Iterator[np.ndarray], k: int, rng: np.random.Generator) -> Generator[np.ndarray, None, None]:
    """Buffered shuffle: a permutation of ``frames`` that holds at most ``k`` of them."""
    buffer: list[np.ndarray] = []
    for frame in frames:
        if len(buffer) < k:
            buffer.append(frame)
            continue
        j = int(rng.integers(k))
        yield buffer[j]
        buffer[j] = frame
    for j in rng.permutation(len(buffer)):
        yield buffer[j]


def _check_values(arr: np.ndarray, where: str) -> None:
    """Dtype and range checks of a stack ``(n, H, W, C)``; errors name the first bad frame."""
    if arr.dtype == np.uint8:
        return
    if np.issubdtype(arr.dtype, np.floating):
        flat = arr.reshape(len(arr), -1)
        finite = np.isfinite(flat).all(axis=1)
        if not finite.all():
            j = int(np.argmin(finite))
            raise ValueError(f"{where}, frame {j} contains NaN or infinite values; clean the data source")
        if flat.size:
            bad = (flat < 0).any(axis=1) | (flat > 1).any(axis=1)
            if bad.any():
                j = int(np.argmax(bad))
                lo, hi = float(flat[j].min()), float(flat[j].max())
                raise ValueError(
                    f"{where}, frame {j} has float values in [{lo:g}, {hi:g}] but float frames must lie in "
                    "[0, 1]; divide [0, 255] data by 255 or pass uint8"
                )
        return
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        raise ValueError(
            f"{where} has dtype {arr.dtype}; only uint8 in [0, 255] and floats in [0, 1] are accepted. "
            "Cast explicitly: x.astype(np.uint8) for 0..255 integers, x.astype(np.float32) for 0/1 masks"
        )
    raise ValueError(f"{where} has dtype {arr.dtype}; use uint8 in [0, 255] or floats in [0, 1]")
