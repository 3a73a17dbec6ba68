import { mulberry32 } from "./support/prng.js";
import { describe, expect, it } from "vitest";
import { chunksIn, gridShape } from "../src/datasets/grid.js";
import { partitionRegion, planPartitions } from "../src/datasets/partitions.js";
import { detectRank } from "../src/datasets/ranks.js";
import { RequestError } from "../src/errors.js";


describe("planPartitions", () => {
  it("follows xpartition: the first dims are split first, never finer than one block", () => {
    // 10 x 20 array, chunks 2 x 5: 5 x 4 blocks. 4 ranks over dim 0: meta chunks of ceil(5/4)=2 blocks → 3 busy ranks.
    const plan = planPartitions([10, 20], [2, 5], 4, [0]);
    expect(plan.metaChunks).toEqual([2, 4]);
    expect(plan.regions).toEqual([
      [[0, 4], [0, 20]],
      [[4, 8], [0, 20]],
      [[8, 10], [0, 20]],
      null,
    ]);
    // 8 ranks over (0, 1): dim 0 in 5 groups of one block, then 8 // 5 = 1 group along dim 1.
    expect(planPartitions([10, 20], [2, 5], 8, [0, 1]).metaGrid).toEqual([5, 1]);
    // 20 ranks over (1, 0): dim 1 in 4 groups, then 20 // 4 = 5 groups along dim 0.
    const wide = planPartitions([10, 20], [2, 5], 20, [1, 0]);
    expect(wide.metaGrid).toEqual([5, 4]);
    expect(wide.regions[1]).toEqual([[0, 2], [5, 10]]); // rank order is C order over the array's dims
  });

  it("leaves ranks idle when there are more ranks than blocks", () => {
    const plan = planPartitions([4, 4], [2, 4], 5);
    expect(plan.regions.filter((r) => r !== null)).toHaveLength(2);
    expect(plan.regions.slice(2)).toEqual([null, null, null]);
  });

  it("covers every chunk exactly once with chunk-aligned regions (property test)", () => {
    const next = mulberry32(42);
    const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
    for (let trial = 0; trial < 300; trial++) {
      const ndim = int(1, 4);
      const shape = Array.from({ length: ndim }, () => int(1, 30));
      const chunks = shape.map((n) => int(1, n + 3));
      const ranks = int(1, 40);
      const dims = Array.from({ length: ndim }, (_, i) => i).filter(() => next() < 0.7);
      if (next() < 0.5) dims.reverse();
      const plan = planPartitions(shape, chunks, ranks, dims);
      const seen = new Map<string, number>();
      for (const [rank, region] of plan.regions.entries()) {
        if (!region) continue;
        region.forEach(([s, e], i) => {
          expect(s % chunks[i]).toBe(0);
          expect(e % chunks[i] === 0 || e === shape[i]).toBe(true);
          expect(e).toBeGreaterThan(s);
        });
        for (const c of chunksIn(region, chunks)) {
          const key = c.join(",");
          expect(seen.has(key), `chunk ${key} in ranks ${seen.get(key)} and ${rank}`).toBe(false);
          seen.set(key, rank);
        }
      }
      const total = gridShape(shape, chunks).reduce((a, b) => a * b, 1);
      expect(seen.size).toBe(total);
      // Never more busy ranks than ranks; dims left out are never split.
      expect(plan.regions.filter(Boolean).length).toBeLessThanOrEqual(ranks);
      shape.forEach((_, i) => {
        if (!dims.includes(i)) expect(plan.metaGrid[i]).toBe(1);
      });
    }
  });

  it("refuses bad ranks and dims", () => {
    expect(() => planPartitions([4], [2], 0)).toThrow(RequestError);
    expect(() => planPartitions([4], [2], 2, [1])).toThrow(/not a dimension/);
    expect(() => partitionRegion([4], [2], 2, 2)).toThrow(/outside 0..1/);
  });
});

describe("detectRank", () => {
  it("reads each batch system's variables", () => {
    const cases: [Record<string, string>, { rank?: number; ranks?: number }, [number, number]][] = [
      [{ SLURM_ARRAY_TASK_ID: "3", SLURM_ARRAY_TASK_COUNT: "16" }, {}, [3, 16]],
      [{ SLURM_ARRAY_TASK_ID: "5", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_MAX: "16" }, {}, [4, 16]],
      [{ SLURM_ARRAY_TASK_ID: "2", SLURM_ARRAY_TASK_COUNT: "4", SLURM_PROCID: "0", SLURM_NTASKS: "1" }, {}, [2, 4]],
      [{ SLURM_PROCID: "7", SLURM_NTASKS: "8" }, {}, [7, 8]],
      [{ JOB_COMPLETION_INDEX: "2" }, { ranks: 4 }, [2, 4]],
      [{ AWS_BATCH_JOB_ARRAY_INDEX: "1" }, { ranks: 3 }, [1, 3]],
      [{ AWS_BATCH_JOB_ARRAY_INDEX: "1", AWS_BATCH_JOB_ARRAY_SIZE: "2" }, {}, [1, 2]],
      [{ BATCH_TASK_INDEX: "0", BATCH_TASK_COUNT: "5" }, {}, [0, 5]],
      [{ CLOUD_RUN_TASK_INDEX: "4", CLOUD_RUN_TASK_COUNT: "10" }, {}, [4, 10]],
      [{ OMPI_COMM_WORLD_RANK: "1", OMPI_COMM_WORLD_SIZE: "2" }, {}, [1, 2]],
      [{ PMI_RANK: "3", PMI_SIZE: "4" }, {}, [3, 4]],
      [{ SLURM_PROCID: "7", SLURM_NTASKS: "8" }, { rank: 1, ranks: 2 }, [1, 2]],
    ];
    for (const [env, explicit, [rank, ranks]] of cases) {
      const info = detectRank(explicit, env);
      expect(info, JSON.stringify(env)).toMatchObject({ rank, ranks });
    }
    expect(detectRank({}, {})).toBeUndefined();
  });

  it("says what is missing or inconsistent", () => {
    expect(() => detectRank({}, { JOB_COMPLETION_INDEX: "2" })).toThrow(/pass --ranks/);
    expect(() => detectRank({ ranks: 4 }, {})).toThrow(/no --rank/);
    expect(() => detectRank({}, { SLURM_PROCID: "8", SLURM_NTASKS: "8" })).toThrow(/outside 0..7/);
    expect(() => detectRank({}, { PMI_RANK: "x", PMI_SIZE: "2" })).toThrow(/not a non-negative integer/);
    expect(() => detectRank({ ranks: 3 }, { BATCH_TASK_INDEX: "0", BATCH_TASK_COUNT: "4" })).toThrow(/disagrees/);
  });
});
