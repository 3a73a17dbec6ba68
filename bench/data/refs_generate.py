#!/usr/bin/python3
"""Inputs for bench/refs.ts (not committed): (500, 500, 500) uint8 datasets written by h5py, the
case of the reference-generation issue.

  /usr/bin/python3 bench/data/refs_generate.py [outdir]      (default /tmp/activestore-bench)

  u8_c25.h5          chunks 25^3 (8,000 chunks), h5py defaults (libver earliest: v1 B-tree index)
  u8_c8.h5           chunks 8^3 (250,047 chunks), h5py defaults (v1 B-tree index)
  u8_c25_latest.h5   chunks 25^3, libver="latest" (fixed maximum shape: fixed array index)
  u8_c8_latest.h5    chunks 8^3, libver="latest" (fixed array index)

Uncompressed (h5py's default); the chunk index, not the data, is what the benchmark reads.
"""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/activestore-bench"
os.makedirs(out, exist_ok=True)
N = 500


def write(name, chunk, **file_kwargs):
    path = os.path.join(out, name)
    if os.path.exists(path):
        print("exists", path)
        return
    with h5py.File(path + ".tmp", "w", **file_kwargs) as f:
        d = f.create_dataset("data", shape=(N, N, N), dtype="u1", chunks=(chunk,) * 3)
        plane = (np.arange(N * N, dtype=np.uint32).reshape(N, N) % 251).astype(np.uint8)
        # Slabs of whole chunk planes, so every chunk is written once.
        step = chunk * max(1, 50 // chunk)
        for t0 in range(0, N, step):
            t1 = min(N, t0 + step)
            d[t0:t1] = (plane[None, :, :] + (np.arange(t0, t1) % 256).astype(np.uint8)[:, None, None])
    os.rename(path + ".tmp", path)
    print("wrote", path, os.path.getsize(path))


write("u8_c25.h5", 25)
write("u8_c8.h5", 8)
write("u8_c25_latest.h5", 25, libver="latest")
write("u8_c8_latest.h5", 8, libver="latest")
