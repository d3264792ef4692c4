"""Streaming batches of bits from an iterator of frames, for training without a dataset in memory.

``IteratorDataLoader`` pulls items from a stream, splits them into frames, optionally shuffles them in a
bounded buffer, and yields uint8 bit batches ``(batch_size, n_bits)``: encoded with a model's own encoding
(``encoding=dtm.encoding``: binary, thermometer or palette), with ``n_grayscale_levels``/``threshold``
(``dtm_lite.core.encoding.encode``), or not at all (``encode=False``: frame batches ``(batch_size, H, W, C)``, which
``DTM.train_from_iterator`` encodes with the model's encoding).

A stream item is one of
- a frame ``(H, W, C)``,
- a stack of frames ``(n, H, W, C)`` (every frame is used, in order),
- a tuple whose first element is one of the above, e.g. ``(frames, actions, rewards)`` from
  ``dtm_lite.data.lunarlander.LunarLanderFrames`` (the other elements are ignored, except labels: see below). A
  tuple with frames in a later element too (``zip`` of two frame streams) is refused rather than half dropped.

Items with a dimension of size 0 (zero-size frames, stacks of no frames) are refused.

Labels (conditional models). The *label slot* of an item is element 1 of a 2-tuple ``(frames, labels)`` or
element 3 of a 4-tuple ``(frames, actions, rewards, labels)`` (what ``LunarLanderFrames(label=...)``
yields); no other element is ever read as labels. Labels are class ids ``(n,)`` of an integer dtype or
one-hot rows ``(n, K)`` (bool, integer or float, exactly one 1 a row), one per frame of the item; a single
frame ``(H, W, C)`` takes a scalar id or one one-hot row ``(K,)``.

- With ``n_classes=K`` every item must fill its label slot; the labels are checked (count, integer dtype,
  ids in ``0..K-1``, one-hot rows of K columns) with errors that name the item and frame, follow their frames
  through the shuffle buffer, and every batch is a pair ``(bits, labels)`` with labels int32 class ids
  ``(B,)``.
- Without ``n_classes`` (the default) batches are the bit arrays alone, as before, and an item whose label
  slot holds something label-like (an integer or bool array of rank 0 to 2, or a float array of rank 2 with
  only 0s and 1s) is refused rather than silently dropped: pass ``n_classes=K``, or yield the frames alone.
  Other tuples, such as ``(frames, actions, rewards)`` or ``(frames, float values)``, pass as before.

Transitions for a world model, ``(frames_t, actions, frames_t1)`` items (``dtm_lite.data.lunarlander.transitions``),
go through :class:`TransitionLoader`, which yields ``(bits_t, actions, bits_t1)`` batches.

Frames are uint8 in [0, 255] or floats in [0, 1]; every frame must have the shape of the first one.
At most ``shuffle_buffer + batch_size`` frames (plus the item being read) are held at any time.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import numpy as np

from dtm_lite.core.encoding import Encoding, encode
from dtm_lite.core.validation import check_int

Preprocess = Callable[[np.ndarray], np.ndarray]


def _checked_image_shape(
    image_shape: Any, encoding: Encoding | None, n_grayscale_levels: int, threshold: float, encode: bool
) -> tuple[int, int, int] | None:
    """``IteratorDataLoader``'s image shape ``(H, W, C)``: the given one (positive sizes) or the encoding's
    (which must agree with a given one); None when neither is known yet. ``encoding`` excludes
    ``n_grayscale_levels``/``threshold`` and ``encode=False``."""
    if image_shape is not None:
        sizes = tuple(int(v) for v in image_shape)
        if len(sizes) != 3 or min(sizes) < 1:
            raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {sizes}")
        image_shape = sizes
    if encoding is None:
        return image_shape
    if not isinstance(encoding, Encoding):
        raise ValueError(f"encoding must be a dtm_lite.core.encoding.Encoding (e.g. dtm.encoding), got {encoding!r}")
    if n_grayscale_levels != 1 or threshold != 0.5:
        raise ValueError("pass either encoding= (the model's dtm.encoding) or n_grayscale_levels/threshold, not both")
    if not encode:
        raise ValueError("encode=False yields frames, so an encoding would be unused; pass one or the other")
    if image_shape is not None and image_shape != encoding.image_shape:
        raise ValueError(
            f"image_shape {image_shape} differs from the encoding's {encoding.image_shape}; they must agree"
        )
    return encoding.image_shape


class IteratorDataLoader:
    """Batches of bits ``(batch_size, n_bits)`` uint8 from a stream of frames; one ``iter()`` is one epoch.

    With ``n_classes=K`` each batch is a pair ``(bits, labels)``, labels int32 class ids ``(batch_size,)``
    taken from the items' label slots (see the module docstring).

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
        encoding: a model's :class:`~dtm_lite.core.encoding.Encoding` (``dtm.encoding``) to encode with instead of
            ``n_grayscale_levels``/``threshold``; the only way to get palette bits, and a guarantee that the bits
            match the model.
        encode: False yields the frames themselves, ``(batch_size, H, W, C)`` (uint8, or float32 in [0, 1] when
            the stream mixes dtypes), for ``DTM.train_from_iterator`` to encode with the model's encoding.
        n_classes: number of label classes K: read the items' labels, check them against K and yield
            ``(bits, labels)`` batches (``(frames, labels)`` with ``encode=False``). None (the default): no
            labels; items that carry some are refused with a message saying to pass ``n_classes``.
        process_index, process_count: multi-host training (one process a host): this process reads only
            stream items ``process_index, process_index + process_count, ...`` (the others are skipped
            unread), so the processes' shares are disjoint; ``batch_size`` is then this process's share of
            the global batch (``DTM.train_step_local``). Default: one process reads everything.

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
        n_classes: int | None = None,
        process_index: int = 0,
        process_count: int = 1,
    ):
        batch_size = check_int("batch_size", batch_size, 1)
        self.process_count = check_int("process_count", process_count, 1)
        self.process_index = check_int("process_index", process_index, 0, self.process_count - 1)
        if n_classes is not None:
            n_classes = check_int("n_classes", n_classes, 1)
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
        image_shape = _checked_image_shape(image_shape, encoding, n_grayscale_levels, threshold, encode)
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
        self.n_classes = n_classes
        self._image_shape: tuple[int, int, int] | None = image_shape
        self._epoch = 0
        self._uint8_range_seen = False  # a uint8 value above 1 seen, or the 0/1 warning given
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

    def __iter__(self) -> Iterator[Any]:
        """One epoch of batches: bit arrays, or ``(bits, labels)`` pairs with ``n_classes``."""
        rng = np.random.default_rng([self.seed, self._epoch])
        self._epoch += 1
        if not isinstance(self.data_iterator, Iterator):
            self._item_index = 0  # a fresh pass over a re-iterable source
        records = self._records()
        if self.shuffle_buffer > 0:
            records = _shuffled(records, self.shuffle_buffer, rng)
        return self._batches(records)

    # -- stream -> records (one frame each, with its label) -----------------------------------------------

    def _records(self) -> Generator[tuple, None, None]:
        """Validated frames ``(H, W, C)``, one at a time, copied so the item can be freed: ``(frame,)``, or
        ``(frame, label)`` with ``n_classes``. The shuffle buffer permutes whole records."""
        for item in self.data_iterator:
            position = self._item_index
            self._item_index += 1
            if position % self.process_count != self.process_index:
                continue  # another process's item
            stack, labels = self._split(item, position)
            for j in range(len(stack)):
                yield (np.array(stack[j]),) if labels is None else (np.array(stack[j]), labels[j])

    def _split(self, item: Any, position: int) -> tuple[np.ndarray, np.ndarray | None]:
        """One stream item as a validated stack ``(n, H, W, C)`` and its labels (int32 ``(n,)``, or None
        without ``n_classes``)."""
        where = f"stream item {position}"
        slot = None
        if isinstance(item, tuple):
            if not item:
                raise ValueError(f"{where} is an empty tuple; yield frames or (frames, ...) tuples")
            _check_tuple(item, where)
            slot = _LABEL_SLOT.get(len(item))
            frames = item[0]
        else:
            frames = item
        single = np.ndim(frames) == 3
        n_item = 1 if single else int(np.shape(frames)[0]) if np.ndim(frames) == 4 else 0
        if self.n_classes is None:
            stack = self._as_stack(frames, where)
            if slot is not None and _label_like(item[slot]):
                raise ValueError(
                    f"{where} is a {len(item)}-tuple whose element {slot} looks like labels "
                    f"({_describe(item[slot])}), but this loader has no n_classes and would drop them; pass "
                    "n_classes=K (the number of classes) to get (bits, labels) batches, or yield the frames alone "
                    "for an unconditional model"
                )
            return stack, None
        if slot is None:
            raise ValueError(
                f"{where} carries no labels ({_describe(item)}), but n_classes={self.n_classes} asks for them; "
                "yield (frames, labels) or (frames, actions, rewards, labels) tuples, or leave n_classes=None "
                "for unconditional batches"
            )
        stack = self._as_stack(frames, where)
        labels = _class_ids(item[slot], n_item, single, self.n_classes, where, "label", "n_classes")
        if len(stack) != len(labels):
            raise ValueError(
                f"{where}: image_preprocessing turned {len(labels)} frames into {len(stack)}, so the labels no "
                "longer match their frames; with labels, image_preprocessing must keep the frame count"
            )
        return stack, labels

    def _as_stack(self, item: Any, where: str) -> np.ndarray:
        """Frames (one, or a stack) as a validated stack ``(n, H, W, C)``."""
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
        if arr.dtype == np.uint8 and not self._uint8_range_seen:
            self._check_uint8_range(arr, where)
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

    def _check_uint8_range(self, arr: np.ndarray, where: str) -> None:
        """Warn (once) when uint8 frames hold only 0s and 1s, until an item shows a value above 1: uint8 is
        read as 0..255, so 0/1 masks would be encoded as (nearly) black frames."""
        top = int(arr.max())
        self._uint8_range_seen = top > 1
        if top == 1:
            self._uint8_range_seen = True  # warned once
            warnings.warn(
                f"{where} is uint8 with values only 0 and 1, but uint8 frames are read as 0..255, so these "
                "frames are encoded as black: for 0/1 masks pass floats in [0, 1] (x.astype(np.float32)) or scale "
                "them to 0..255 (x * 255)",
                stacklevel=2,
            )

    # -- records -> batches -------------------------------------------------------------------------------

    def _batches(self, records: Generator[tuple, None, None]) -> Iterator[Any]:
        n_out = 0
        batch: list[tuple] = []
        try:
            for record in records:
                batch.append(record)
                if len(batch) == self.batch_size:
                    yield self._emit(batch)
                    batch = []
                    n_out += 1
                    if self.max_batches_per_epoch is not None and n_out >= self.max_batches_per_epoch:
                        return
            if batch and not self.drop_last:
                yield self._emit(batch)
        finally:
            records.close()  # stops a re-iterable source's pass now (e.g. closes its environments)

    def _emit(self, batch: list[tuple]) -> Any:
        """Records -> one batch: bits, or ``(bits, labels int32 (B,))`` with ``n_classes``."""
        bits = self._encode([r[0] for r in batch])
        if self.n_classes is None:
            return bits
        return bits, np.asarray([r[1] for r in batch], np.int32)

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


class TransitionLoader(IteratorDataLoader):
    """Batches ``(bits_t, actions, bits_t1)`` of world-model transitions; one ``iter()`` is one epoch.

    A stream item is a transition tuple ``(frames_t, actions, frames_t1)``: two stacks ``(n, H, W, C)`` and
    the actions ``(n,)`` (integer ids, or one-hot rows ``(n, n_actions)``), where ``frames_t1[i]`` follows
    ``frames_t[i]`` under ``actions[i]``; or one transition ``(frame (H, W, C), action, frame)``.
    ``dtm_lite.data.lunarlander.transitions(source)`` yields such items, one per episode. Each batch is
    ``(bits_t uint8 (B, n_bits), actions int32 (B,), bits_t1 uint8 (B, n_bits))``, both frames encoded the same
    way (``(frames_t, actions, frames_t1)`` with ``encode=False``); the shuffle buffer moves whole transitions,
    so a row's three parts always belong together.

    Args:
        n_actions: number of actions A; action ids must lie in ``0..A-1``.

    The other arguments are :class:`IteratorDataLoader`'s (``image_preprocessing`` is applied to both
    stacks and must keep their frame count). Errors name the item and the transition.
    """

    def __init__(
        self,
        data_iterator: Iterable[Any],
        batch_size: int,
        n_actions: int,
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
        process_index: int = 0,
        process_count: int = 1,
    ):
        super().__init__(
            data_iterator, batch_size, n_grayscale_levels=n_grayscale_levels,
            max_batches_per_epoch=max_batches_per_epoch, image_preprocessing=image_preprocessing,
            threshold=threshold, drop_last=drop_last, shuffle_buffer=shuffle_buffer, seed=seed,
            image_shape=image_shape, encoding=encoding, encode=encode, process_index=process_index,
            process_count=process_count,
        )  # fmt: skip
        self.n_actions = check_int("n_actions", n_actions, 1)

    def __iter__(self) -> Iterator[Any]:
        """One epoch of ``(bits_t, actions, bits_t1)`` batches."""
        return super().__iter__()

    def _records(self) -> Generator[tuple, None, None]:
        """Validated transitions ``(frame_t, action, frame_t1)``, one at a time, copied."""
        for item in self.data_iterator:
            position = self._item_index
            self._item_index += 1
            if position % self.process_count != self.process_index:
                continue  # another process's item
            where = f"stream item {position}"
            if not isinstance(item, tuple) or len(item) != 3:
                raise ValueError(
                    f"{where} is {_describe(item)}; a transition stream yields (frames_t, actions, frames_t1) "
                    "tuples (e.g. dtm_lite.data.lunarlander.transitions(source)); plain frames go to IteratorDataLoader"
                )
            frames_t, actions, frames_t1 = item
            shape_t, shape_t1 = np.shape(frames_t), np.shape(frames_t1)
            # a history of F frames before each transition: frames_t (n, F, H, W, C) or (F, H, W, C)
            history = len(shape_t) == len(shape_t1) + 1 and len(shape_t1) in (3, 4)
            lead = shape_t[:1] if len(shape_t1) == 4 else ()
            if not (shape_t == shape_t1 or (history and lead + shape_t[len(lead) + 1 :] == shape_t1)):
                raise ValueError(
                    f"{where}: frames_t has shape {shape_t} but frames_t1 {shape_t1}; each transition needs a frame "
                    "before (or a history of F frames before: (n, F, H, W, C)) and a frame after, of one shape"
                )
            single = len(shape_t1) == 3
            if history:
                f = shape_t[len(lead)]
                flat = self._as_stack(np.reshape(frames_t, (-1,) + tuple(shape_t1[-3:])), f"{where} (frames_t)")
                stack_t = flat.reshape((-1, f) + flat.shape[1:])
            else:
                stack_t = self._as_stack(frames_t, f"{where} (frames_t)")
            stack_t1 = self._as_stack(frames_t1, f"{where} (frames_t1)")
            n = 1 if single else int(shape_t1[0])
            ids = _class_ids(actions, n, single, self.n_actions, where, "action", "n_actions")
            if len(stack_t) != n or len(stack_t1) != n:
                raise ValueError(
                    f"{where}: image_preprocessing turned {n} frames into {len(stack_t)} and {len(stack_t1)}; "
                    "with transitions it must keep the frame count"
                )
            for j in range(n):
                yield np.array(stack_t[j]), ids[j], np.array(stack_t1[j])

    def _emit(self, batch: list[tuple]) -> Any:
        """Records -> ``(bits_t, actions int32 (B,), bits_t1)``."""
        before = self._encode([r[0] for r in batch])
        if self.encode and before.ndim == 3:  # histories (B, F, n_bits): the F frames' bits side by side
            before = before.reshape(len(batch), -1)
        after = self._encode([r[2] for r in batch])
        return before, np.asarray([r[1] for r in batch], np.int32), after


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
                "(itertools.chain) or stack them (np.concatenate) instead; for world-model transitions "
                "(frames_t, actions, frames_t1) use TransitionLoader"
            )


_LABEL_SLOT = {2: 1, 4: 3}  # tuple length -> the element holding labels: (frames, labels), (frames, a, r, labels)


def _describe(x: Any) -> str:
    """Short description of an item element for error messages: type, dtype and shape."""
    if isinstance(x, tuple):
        return f"a {len(x)}-tuple"
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - anything np.asarray cannot read is described by its type
        return type(x).__name__
    return f"{type(x).__name__} of dtype {arr.dtype} and shape {arr.shape}"


def _label_like(x: Any) -> bool:
    """Would ``x`` be read as labels: an integer or bool array of rank 0 to 2, or a float array of rank 2
    with only 0s and 1s (one-hot rows)?"""
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - not an array, so not labels
        return False
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return arr.ndim <= 2
    if np.issubdtype(arr.dtype, np.floating) and arr.ndim == 2 and arr.size > 0:
        return bool(np.isin(arr, (0.0, 1.0)).all())
    return False


def _class_ids(raw: Any, n: int, single: bool, k: int, where: str, what: str, knob: str) -> np.ndarray:
    """Class ids int32 ``(n,)`` from ids ``(n,)`` or one-hot rows ``(n, k)`` (a scalar / one row ``(k,)``
    for a single frame), checked; errors name ``where`` and the frame. ``what`` is "label" or "action" and
    ``knob`` the argument that sets ``k``."""
    try:
        arr = np.asarray(raw)
    except Exception as err:  # noqa: BLE001 - re-raised with the item named
        raise ValueError(f"{where}: its {what}s ({type(raw).__name__}) are not an array: {err}") from err
    shape_in = arr.shape
    if single:
        arr = arr[None]  # a scalar id -> (1,), one one-hot row (k,) -> (1, k), as the frame gets a batch axis
    form = f"class ids ({n},) of an integer dtype or one-hot rows ({n}, {k})"
    if single:
        form = f"a scalar class id or one one-hot row ({k},)"
    numeric = arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)
    if arr.ndim not in (1, 2) or not numeric:
        raise ValueError(
            f"{where} has {what}s of dtype {arr.dtype} and shape {shape_in}; {what}s must be {form} (for its "
            f"{n} frame{'s' if n != 1 else ''})"
        )
    if len(arr) != n:
        raise ValueError(
            f"{where} has {n} frame{'s' if n != 1 else ''} but {len(arr)} {what}s (shape {shape_in}); give one "
            f"{what} per frame: {form}"
        )
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"{where} has {what} ids of dtype {arr.dtype}; class ids must have an integer dtype: cast them "
                f"with .astype(np.int64) if they are whole numbers, or give one-hot rows ({n}, {k})"
            )
        bad = (arr < 0) | (arr >= k)
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(
                f"{where}, frame {j} has {what} {int(arr[j])}, outside 0..{k - 1} ({knob}={k}); ids count from 0, "
                f"so {knob} must exceed the largest id"
            )
        return arr.astype(np.int32)
    if arr.shape[1] != k:
        raise ValueError(
            f"{where} has one-hot {what}s with {arr.shape[1]} columns (shape {shape_in}) but {knob}={k}; one-hot "
            f"rows need exactly {k} columns, one per class"
        )
    ok = np.isin(arr, (0, 1)).all(axis=1) & (arr.astype(np.float64).sum(axis=1) == 1)
    if not ok.all():
        j = int(np.argmin(ok))
        raise ValueError(
            f"{where}, frame {j} has {what} row {np.array2string(arr[j], threshold=12)}, which is not one-hot "
            f"(exactly one 1, the rest 0); give one-hot rows ({n}, {k}) or integer class ids ({n},)"
        )
    return arr.argmax(axis=1).astype(np.int32)


def _shuffled(records: Iterator[Any], k: int, rng: np.random.Generator) -> Generator[Any, None, None]:
    """Buffered shuffle: a permutation of ``records`` that holds at most ``k`` of them."""
    buffer: list[Any] = []
    for record in records:
        if len(buffer) < k:
            buffer.append(record)
            continue
        j = int(rng.integers(k))
        yield buffer[j]
        buffer[j] = record
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
