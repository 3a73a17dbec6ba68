#!/bin/bash
# A month of netCDF files → one zarr store on S3, written by 16 SLURM array tasks.
#
#   1. combine the files' references (one JSON; no data is copied):
#        activestore combine /data/tas_2026-01-*.nc --concat-dim time --identical-dims lat,lon -o month.json
#   2. initialise the store once (metadata + coordinate variables):
#        activestore convert month.json s3://bucket/tas-2026-01.zarr --chunks time=24,lat=90,lon=180 --codec zstd --init
#   3. submit this script:  sbatch slurm-array.sh
#   4. optionally check every chunk afterwards (re-running --init with the same options is harmless):
#        activestore convert month.json s3://bucket/tas-2026-01.zarr --chunks time=24,lat=90,lon=180 --init --verify
#
# Each task reads SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT and writes only its own chunks, so no
# chunk has two writers. A task that fails or is preempted can simply be re-run (whole-chunk writes
# are idempotent): sbatch --array=<failed ids> slurm-array.sh
#SBATCH --job-name=tas-to-zarr
#SBATCH --array=0-15
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=01:00:00
#SBATCH --requeue
set -euo pipefail

activestore convert month.json s3://bucket/tas-2026-01.zarr \
  --chunks time=24,lat=90,lon=180 --codec zstd --dims time,lat
