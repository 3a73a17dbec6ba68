/**
 * Undoes a chunk's HDF5 filter pipeline with the shared codec registry, for chunks the builder must
 * decode itself (variable-length strings, whose stored bytes are heap references, not values).
 */
import { codecLoader } from "../codecs/registry.js";
import type { CodecConfig } from "../codecs/types.js";
import { CodecError } from "../errors.js";

/**
 * Decodes `bytes` through `codecs` (pipeline order, as filtersToCodecs returns them) in reverse,
 * skipping the filters the chunk's `mask` says were not applied. `size` is the decoded size.
 */
export async function unfilter(
  bytes: Uint8Array,
  codecs: CodecConfig[],
  mask: number,
  size: number,
  where: string,
): Promise<Uint8Array> {
  let out = bytes;
  for (let i = codecs.length - 1; i >= 0; i--) {
    if ((mask & (1 << i)) !== 0) continue;
    const config = codecs[i];
    const load = codecLoader(config.id);
    if (!load) throw new CodecError(`unknown codec id "${config.id}"`, config.id, where);
    const codec = (await load()).fromConfig(config, { dataType: "uint8", shape: [size] });
    try {
      out = await codec.decode(out);
    } catch (cause) {
      if (cause instanceof CodecError) throw cause;
      throw new CodecError((cause as Error).message, config.id, where, { cause });
    }
  }
  return out;
}
