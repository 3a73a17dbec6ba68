/**
 * The batch runner behind getMany / setMany / deleteMany: at most `concurrency` operations in
 * flight, input pulled lazily (a streamed setMany never buffers more than it writes), results
 * yielded in completion order. Nothing new starts while the consumer is not pulling, so memory stays
 * bounded by concurrency × item size. The first failure aborts the rest and is rethrown.
 */
import { setMaxListeners } from "node:events";
import type { Batch, BatchItem, BatchProgress } from "./types.js";

export interface BatchRunOptions {
  concurrency: number;
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress) => void;
}

export interface WorkResult<V> {
  value: V;
  /** Bytes moved, for progress reporting. */
  bytes: number;
}

type Settled<V> =
  | { id: number; key: string; ok: true; result: WorkResult<V> }
  | { id: number; key: string; ok: false; error: unknown };

function sizeOf(source: unknown): number | undefined {
  if (Array.isArray(source)) return source.length;
  if (source instanceof Set || source instanceof Map) return source.size;
  return undefined;
}

function iteratorOf<I>(source: Iterable<I> | AsyncIterable<I>): AsyncIterator<I> | Iterator<I> {
  return Symbol.asyncIterator in source
    ? (source as AsyncIterable<I>)[Symbol.asyncIterator]()
    : (source as Iterable<I>)[Symbol.iterator]();
}

export function runBatch<I, V>(
  source: Iterable<I> | AsyncIterable<I>,
  keyOf: (item: I) => string,
  work: (item: I, signal: AbortSignal) => Promise<WorkResult<V>>,
  options: BatchRunOptions,
): Batch<V> {
  const concurrency = Math.max(1, Math.floor(options.concurrency));
  const total = sizeOf(source);

  async function* run(): AsyncGenerator<BatchItem<V>> {
    options.signal?.throwIfAborted();
    const controller = new AbortController();
    // Every operation in flight listens on this one signal (undici does when store timeouts are
    // off); more than 10 is by design, not a leak, so Node must not warn about it.
    setMaxListeners(0, controller.signal);
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const input = iteratorOf(source);
    // Settled operations wait in a queue for the consumer: O(1) per item, where a Promise.race over
    // everything in flight re-subscribed to each pending operation on every completion.
    const inFlight = new Set<Promise<void>>();
    const settledQueue: Settled<V>[] = [];
    let wake: (() => void) | undefined;
    let nextId = 0;
    let exhausted = false;
    const progress: BatchProgress = { done: 0, total, bytes: 0 };
    try {
      for (;;) {
        while (!exhausted && inFlight.size < concurrency) {
          const next = await input.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          const id = nextId++;
          const key = keyOf(next.value);
          const task: Promise<void> = work(next.value, controller.signal)
            .then(
              (result): Settled<V> => ({ id, key, ok: true, result }),
              (error: unknown): Settled<V> => ({ id, key, ok: false, error }),
            )
            .then((settled) => {
              inFlight.delete(task);
              settledQueue.push(settled);
              wake?.();
            });
          inFlight.add(task);
        }
        if (settledQueue.length === 0) {
          if (inFlight.size === 0) return;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
        const settled = settledQueue.shift()!;
        if (!settled.ok) throw settled.error;
        progress.done++;
        progress.bytes += settled.result.bytes;
        options.onProgress?.({ ...progress });
        yield { key: settled.key, value: settled.result.value };
      }
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      if (inFlight.size > 0) {
        controller.abort(new Error("batch stopped"));
        await Promise.all(inFlight);
      }
      await input.return?.();
    }
  }

  return {
    [Symbol.asyncIterator]: run,
    async toMap() {
      const out = new Map<string, V>();
      for await (const { key, value } of run()) out.set(key, value);
      return out;
    },
  };
}
