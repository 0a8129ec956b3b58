#!/usr/bin/env python3
"""Process start of CNI plugin binaries: each one exec'd with CNI_COMMAND=VERSION,
interleaved, 300 times; prints the median and the 10th/90th percentiles in ms.

Usage: python3 bench/start_time.py dist/aksnet-cni /path/to/other/aksnet-cni /bin/true
"""
import statistics
import subprocess
import sys
import time

ROUNDS = 300


def main(bins):
    env = {"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"}
    times = {b: [] for b in bins}
    for _ in range(ROUNDS):
        for b in bins:
            t = time.perf_counter_ns()
            subprocess.run([b], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times[b].append((time.perf_counter_ns() - t) / 1e6)
    for b in bins:
        v = sorted(times[b])
        p10, p90 = v[len(v) // 10], v[len(v) * 9 // 10]
        print(f"{b}: median {statistics.median(v):.3f} ms p10 {p10:.3f} p90 {p90:.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
