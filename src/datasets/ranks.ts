/**
 * Which partition this process writes: rank and size from explicit options or from the variables
 * that batch systems and launchers set for each task.
 */
import { RequestError } from "../errors.js";

export interface RankInfo {
  rank: number;
  ranks: number;
  /** Where the numbers came from, for logs: "--rank/--ranks", "SLURM array", ... */
  source: string;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const n = Number(raw.trim());
  if (!Number.isSafeInteger(n) || n < 0) throw new RequestError(`${name}="${raw}" is not a non-negative integer`);
  return n;
}

interface Detected {
  rank: number;
  ranks?: number;
  source: string;
}

/** Each convention in turn; the first whose index variable is set wins. */
function fromEnvironment(env: Env): Detected | undefined {
  const arrayId = int(env, "SLURM_ARRAY_TASK_ID");
  if (arrayId !== undefined) {
    // Arrays may start anywhere (--array=1-16): ranks count from the minimum index.
    const min = int(env, "SLURM_ARRAY_TASK_MIN") ?? 0;
    const max = int(env, "SLURM_ARRAY_TASK_MAX");
    const count = int(env, "SLURM_ARRAY_TASK_COUNT") ?? (max !== undefined ? max - min + 1 : undefined);
    return { rank: arrayId - min, ranks: count, source: "SLURM array (SLURM_ARRAY_TASK_ID)" };
  }
  const tables: [string, string | undefined, string][] = [
    ["SLURM_PROCID", "SLURM_NTASKS", "SLURM tasks (SLURM_PROCID/SLURM_NTASKS)"],
    ["JOB_COMPLETION_INDEX", undefined, "Kubernetes Indexed Job (JOB_COMPLETION_INDEX)"],
    ["AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE", "AWS Batch array (AWS_BATCH_JOB_ARRAY_INDEX)"],
    ["BATCH_TASK_INDEX", "BATCH_TASK_COUNT", "Google Cloud Batch (BATCH_TASK_INDEX/BATCH_TASK_COUNT)"],
    ["CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT", "Cloud Run job (CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT)"],
    ["OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "Open MPI (OMPI_COMM_WORLD_RANK/SIZE)"],
    ["PMI_RANK", "PMI_SIZE", "MPI (PMI_RANK/PMI_SIZE)"],
  ];
  for (const [indexName, sizeName, source] of tables) {
    const rank = int(env, indexName);
    if (rank !== undefined) return { rank, ranks: sizeName ? int(env, sizeName) : undefined, source };
  }
  return undefined;
}

/**
 * Rank and size for this process. Explicit values win over the environment; `--ranks` supplies the
 * size where the environment gives only an index (Kubernetes, AWS Batch). Returns undefined when
 * nothing says this is one of several processes.
 */
export function detectRank(explicit: { rank?: number; ranks?: number } = {}, env: Env = process.env): RankInfo | undefined {
  let detected: Detected | undefined;
  if (explicit.rank !== undefined) detected = { rank: explicit.rank, ranks: explicit.ranks, source: "--rank/--ranks" };
  else detected = fromEnvironment(env);
  if (!detected) {
    if (explicit.ranks !== undefined) {
      throw new RequestError(`--ranks ${explicit.ranks} given, but no --rank and no task index in the environment`);
    }
    return undefined;
  }
  if (explicit.ranks !== undefined && detected.ranks !== undefined && explicit.ranks !== detected.ranks && explicit.rank === undefined) {
    throw new RequestError(`--ranks ${explicit.ranks} disagrees with ${detected.source}, which says ${detected.ranks} tasks`);
  }
  const ranks = explicit.ranks ?? detected.ranks;
  if (ranks === undefined) {
    throw new RequestError(`${detected.source} gives this task's index (${detected.rank}) but not the number of tasks: pass --ranks`);
  }
  if (!Number.isSafeInteger(ranks) || ranks < 1) throw new RequestError(`the number of ranks must be a positive integer, got ${ranks}`);
  if (!Number.isSafeInteger(detected.rank) || detected.rank < 0 || detected.rank >= ranks) {
    throw new RequestError(`rank ${detected.rank} (from ${detected.source}) is outside 0..${ranks - 1}`);
  }
  return { rank: detected.rank, ranks, source: detected.source };
}
