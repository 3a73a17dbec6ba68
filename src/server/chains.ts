/**
 * Codec chains shared across requests. A client reducing an array sends the same codecs, dtype and
 * chunk shape with every chunk, so the chain (codec classes resolved through the registry, their
 * configurations checked) is built once per distinct combination rather than once per request.
 * Codecs hold no per-chunk state, so one chain serves concurrent requests.
 */
import { loadCodecChain, type CodecChain } from "../codecs/index.js";
import type { ReductionRequest } from "./request.js";

export class CodecChains {
  /** key → chain; Map order is least recently used first. */
  private readonly chains = new Map<string, Promise<CodecChain>>();
  constructor(private readonly max: number) {}

  get(req: Pick<ReductionRequest, "codecs" | "dtype" | "shape">): Promise<CodecChain> {
    const key = `${req.dtype} ${req.shape!.join(",")} ${JSON.stringify(req.codecs)}`;
    let chain = this.chains.get(key);
    if (chain) {
      this.chains.delete(key);
    } else {
      chain = loadCodecChain(req.codecs, { dataType: req.dtype, shape: req.shape! });
      // A chain that failed to load is not kept: the next request gets the error afresh.
      chain.catch(() => this.chains.get(key) === chain && this.chains.delete(key));
      while (this.chains.size >= this.max) this.chains.delete(this.chains.keys().next().value as string);
    }
    this.chains.set(key, chain);
    return chain;
  }
}
