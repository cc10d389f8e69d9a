"""Filling a block's Bloom filter: the NumPy extra against the pure path, same bits.

Prints one JSON line: microseconds per key for each path (median of repeats) and the ratio
pure / numpy, for a block of ``--keys`` distinct trace keys at the ledger's 1 % rate.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

import orjson

from market_protocol import bloom


def _time_per_key(fill: object, digests: list[bytes], repeats: int) -> float:
    joined = b"".join(digests)
    m_bits, k = bloom.size_for(len(digests))
    runs = []
    for _ in range(repeats):
        bits = bytearray(m_bits // 8)
        started = time.perf_counter()
        fill(bits, joined, m_bits, k)  # type: ignore[operator]
        runs.append((time.perf_counter() - started) / len(digests) * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    digests = [hashlib.sha256(f"lot-{i}".encode()).digest() for i in range(args.keys)]
    pure = _time_per_key(bloom.fill_pure, digests, args.repeats)
    result: dict[str, object] = {"bench": "bloom_fill", "keys": args.keys,
                                 "pure_us_per_key": round(pure, 3)}
    if bloom._numpy_available():
        fast = _time_per_key(bloom._fill_numpy, digests, args.repeats)
        result.update(numpy_us_per_key=round(fast, 3), ratio_pure_to_numpy=round(pure / fast, 2))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
