"""The machine's measured peak under JAX/XLA: float32 FMA throughput and memory bandwidth, on the default device.

    python benchmarks/peak.py [--seconds 1.0] [--repeats 5]

What it runs (each compiled by XLA like the sampler, timed as the best of ``--repeats`` runs):

* ``fma``: an array that fits in the L2 caches, updated in place by a ``fori_loop`` whose body is one fused
  elementwise kernel of 8 independent chains of 16 dependent multiply-adds per element (2 flops each), plus
  the 7 adds that join the chains. Compiled twice: with XLA's default 256-bit vectors and with
  :data:`dtm_lite.core.sampler.COMPILER_OPTIONS` (512-bit, what the sampler uses). This is the ceiling for
  float work that an XLA elementwise kernel reaches on these cores, not the vendor's data-sheet peak.
* ``int``: the same loop with the integer operations of the sampler's hash (32-bit multiply, shift, xor).
* ``copy`` and ``sum``: a 256 MiB float32 array (far beyond the caches) updated in place (``x + 1`` in a
  short loop: read and write, 2 bytes moved per byte of x) and summed (read only): main-memory bandwidth.
* ``copy-l2``: the copy on a 1 MiB array, repeated in a ``fori_loop``: bandwidth from the caches.

Prints one line per figure. Shared machines: run it when the machine is quiet, and read the figures as
"at least this much".
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp

from dtm_lite.core.sampler import COMPILER_OPTIONS

CHAINS, DEPTH = 8, 16  # independent chains per element, dependent FMAs per chain


def best_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def fma_body(x: jax.Array) -> jax.Array:
    out = None
    for c in range(CHAINS):
        y = x
        a, b = jnp.float32(0.999 - 1e-4 * c), jnp.float32(1e-3)
        for _ in range(DEPTH):
            y = y * a + b
        out = y if out is None else out + y
    return out * jnp.float32(1.0 / CHAINS)


def int_body(x: jax.Array) -> jax.Array:
    out = None
    for c in range(CHAINS):
        y = x ^ jnp.uint32(c)
        for _ in range(DEPTH // 2):
            y = (y ^ (y >> 15)) * jnp.uint32(0x846CA68B)  # 3 ops: shift, xor, multiply
        out = y if out is None else out ^ y
    return out


def looped(body, iters: int, compiler_options=None):
    @functools.partial(jax.jit, compiler_options=compiler_options)
    def run(x):
        return jax.lax.fori_loop(0, iters, lambda i, x: body(x), x)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iters", type=int, default=2000, help="fori_loop iterations of the compute kernels")
    args = ap.parse_args()

    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), {jax.local_device_count()} device(s)")
    n = 2 * 64 * 1024  # float32 elements: 512 KiB, in the L2 caches of two cores
    x = jnp.linspace(0.5, 1.5, n, dtype=jnp.float32)
    flops = n * args.iters * (CHAINS * DEPTH * 2 + CHAINS)
    for name, opts in (("256-bit", None), ("512-bit", COMPILER_OPTIONS)):
        t = best_time(functools.partial(looped(fma_body, args.iters, opts), x), args.repeats)
        print(f"fma ({name} vectors): {flops / t / 1e9:8.1f} GFLOP/s   [{n} floats x {args.iters} iterations]")

    xi = jnp.arange(n, dtype=jnp.uint32)
    int_ops = n * args.iters * (CHAINS * (DEPTH // 2) * 3 + 2 * CHAINS - 1)
    t = best_time(functools.partial(looped(int_body, args.iters, COMPILER_OPTIONS), xi), args.repeats)
    print(f"int (mul/shift/xor, 512-bit): {int_ops / t / 1e9:8.1f} Gop/s")

    big = jnp.ones(64 * 1024 * 1024, jnp.float32)  # 256 MiB
    reps = 4  # in place inside the loop: a fresh 256 MiB output per call would time the page faults
    t = best_time(functools.partial(looped(lambda a: a + 1.0, reps), big), args.repeats)
    print(f"copy (256 MiB, read + write):  {2 * big.nbytes * reps / t / 1e9:8.1f} GB/s")
    t = best_time(functools.partial(jax.jit(jnp.sum), big), args.repeats)
    print(f"sum  (256 MiB, read):          {big.nbytes / t / 1e9:8.1f} GB/s")
    small = jnp.ones(256 * 1024, jnp.float32)  # 1 MiB
    reps = 2000
    t = best_time(functools.partial(looped(lambda a: a + 1.0, reps), small), args.repeats)
    print(f"copy-l2 (1 MiB, read + write): {2 * small.nbytes * reps / t / 1e9:8.1f} GB/s")


if __name__ == "__main__":
    main()
