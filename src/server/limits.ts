/**
 * Admission control: a memory budget (bytes of chunk data held by requests in flight: the fetched
 * bytes plus the decoded array) and a limit on operations computing at once. A request larger than
 * the whole budget is refused (400, as Reductionist's InsufficientMemory); otherwise it waits its
 * turn in FIFO order, and when the queue is full or the wait too long it gets 503 so the client
 * backs off and retries.
 */
import { RequestError } from "../errors.js";

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class MemoryBudget {
  private used = 0;
  private peakBytes = 0;
  private readonly queue: Waiter[] = [];

  constructor(
    readonly total: number,
    private readonly maxQueue: number,
    private readonly maxWaitMs: number,
  ) {}

  get inUse(): number {
    return this.used;
  }
  /** Highest `inUse` seen: tests and metrics check it never passes `total`. */
  get peak(): number {
    return this.peakBytes;
  }

  /** Resolves with a release function once `bytes` fit. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    if (bytes > this.total) {
      throw new RequestError("Insufficient memory to process request", 400, [
        `${bytes} bytes requested, the server's whole budget is ${this.total}`,
      ]);
    }
    if (this.queue.length === 0 && this.used + bytes <= this.total) return this.take(bytes);
    if (this.queue.length >= this.maxQueue) {
      throw new RequestError("server busy", 503, [`${this.queue.length} requests already waiting for memory`]);
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, grant: () => (cleanup(), resolve()) };
      const fail = (error: RequestError) => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        cleanup();
        reject(error);
        this.drain();
      };
      const timer = setTimeout(() => fail(new RequestError("server busy", 503, [`waited ${this.maxWaitMs} ms for memory`])), this.maxWaitMs);
      const onAbort = () => fail(new RequestError("request aborted", 503));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
    return this.take(bytes, true);
  }

  private take(bytes: number, granted = false): () => void {
    if (!granted) this.used += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.used);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.drain();
    };
  }

  private drain(): void {
    while (this.queue.length > 0 && this.used + this.queue[0].bytes <= this.total) {
      const w = this.queue.shift()!;
      this.used += w.bytes; // counted before the waiter runs, so nobody overtakes it
      w.grant();
    }
  }
}

/** At most `limit` holders at once; the rest wait in FIFO order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T> | T): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
