/**
 * The default engine: chunks processed in-process with a bounded number in flight. The chunk
 * iterator is pulled only when a slot frees, so memory stays at `concurrency` chunks however large
 * the array; the first failure stops new work and is rethrown once running work settles.
 */

export interface EngineOptions {
  /** Chunks in flight at once. Default 8. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after each chunk completes. */
  onChunk?: (done: number) => void;
}

export async function forEachBounded<T>(
  items: Iterable<T>,
  fn: (item: T) => Promise<void>,
  options: EngineOptions = {},
): Promise<number> {
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const iterator = items[Symbol.iterator]();
  let failed: { error: unknown } | undefined;
  let done = 0;
  const worker = async () => {
    for (;;) {
      if (failed) return;
      options.signal?.throwIfAborted();
      const next = iterator.next();
      if (next.done) return;
      try {
        await fn(next.value);
        done++;
        options.onChunk?.(done);
      } catch (error) {
        failed ??= { error };
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failed) throw failed.error;
  return done;
}
