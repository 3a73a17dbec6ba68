#!/usr/bin/python3
"""Benchmark inputs (not committed): (500, 500, 500) float64 netCDF4 files written by netCDF4-python,
as the issues describe them.

  /usr/bin/python3 bench/data/generate.py [outdir]      (default /tmp/activestore-bench)

  raw75.nc   chunks 75^3, uncompressed (1.0 GB, 343 chunks)
  zlib25.nc  chunks 25^3, zlib level 1 + shuffle (8,000 chunks)
"""
import os
import sys

import netCDF4
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/activestore-bench"
os.makedirs(out, exist_ok=True)
N = 500
rng = np.random.default_rng(500)


def write(name, chunk, **kwargs):
    path = os.path.join(out, name)
    if os.path.exists(path):
        print("exists", path)
        return
    ds = netCDF4.Dataset(path + ".tmp", "w", format="NETCDF4")
    for d in ("t", "z", "y"):
        ds.createDimension(d, N)
    v = ds.createVariable("data", "f8", ("t", "z", "y"), chunksizes=(chunk,) * 3, **kwargs)
    # Smooth field plus noise, so zlib has something to do but does not collapse it.
    base = np.sin(np.linspace(0, 20, N))[None, :, None] * np.cos(np.linspace(0, 7, N))[None, None, :] * 100
    for t0 in range(0, N, 50):
        block = base + t0 + rng.normal(0, 1, (50, N, N))
        v[t0:t0 + 50] = np.round(block, 2)
    ds.close()
    os.rename(path + ".tmp", path)
    print("wrote", path, os.path.getsize(path))


write("raw75.nc", 75)
write("zlib25.nc", 25, zlib=True, complevel=1, shuffle=True)
