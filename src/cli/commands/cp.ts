/**
 * `activestore cp <src> <dst>`: one object, or with `-r` every object under a prefix, from any
 * store to any store. Objects stream through getMany → setMany, so at most about
 * 2 × concurrency objects are in memory whatever the size of the tree.
 */
import { Option, type Command } from "commander";
import type { Compression, Store } from "../../stores/types.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import { startProgress } from "../progress.js";
import {
  baseName,
  closeStore,
  findObject,
  isLocalDirectory,
  listKeys,
  looksLikeDirectory,
  openObject,
  openUrl,
  type GlobalOptions,
} from "../stores.js";

interface CpOptions extends GlobalOptions {
  recursive?: boolean;
  compress?: Compression;
  level?: string;
}

interface Transfer {
  compress?: Compression;
  level?: number;
  concurrency?: number;
}

function transferOptions(options: CpOptions): Transfer {
  let level: number | undefined;
  if (options.level !== undefined) {
    level = Number(options.level);
    if (!Number.isInteger(level)) throw new CliError(`invalid --level "${options.level}"`, EXIT_USAGE);
    if (!options.compress) throw new CliError("--level needs --compress", EXIT_USAGE);
  }
  return { compress: options.compress, level, concurrency: options.concurrency };
}

/** Copies `keys` (relative to both roots) and returns the number of bytes read. */
export async function copyKeys(
  source: Store,
  target: Store,
  keys: string[],
  transfer: Transfer,
  label = "cp",
): Promise<{ objects: number; bytes: number }> {
  const progress = startProgress(label, keys.length);
  let bytes = 0;
  const reads = source.getMany(keys, { concurrency: transfer.concurrency });
  async function* entries(): AsyncGenerator<readonly [string, Uint8Array]> {
    for await (const { key, value } of reads) {
      // Listed a moment ago: gone now means someone else deleted it, which the user must hear about.
      if (value === undefined) throw new CliError(`${source.url}: object "${key}" disappeared during the copy`);
      bytes += value.length;
      yield [key, value] as const;
    }
  }
  let objects = 0;
  try {
    const writes = target.setMany(entries(), {
      concurrency: transfer.concurrency,
      compress: transfer.compress,
      level: transfer.level,
      onProgress: ({ done, bytes: stored }) => progress.update({ done, total: keys.length, bytes: stored }),
    });
    for await (const _ of writes) objects++;
  } finally {
    progress.stop();
  }
  return { objects, bytes };
}

async function copyOne(src: string, dst: string, options: CpOptions, transfer: Transfer): Promise<void> {
  const { store: source, key } = await openObject(src, options);
  try {
    const value = await source.get(key);
    if (value === undefined) throw new CliError(`no such object: ${src}`);
    // `cp a.nc dir/` and `cp a.nc existing-dir` put the object inside, keeping its name.
    const into = looksLikeDirectory(dst) || (await isLocalDirectory(dst));
    const target = into ? { store: await openUrl(dst, options), key: baseName(key) } : await openObject(dst, options);
    try {
      await target.store.set(target.key, value, { compress: transfer.compress, level: transfer.level });
    } finally {
      await closeStore(target.store);
    }
  } finally {
    await closeStore(source);
  }
}

export function register(program: Command): void {
  program
    .command("cp")
    .description("copy an object, or with -r every object under a prefix, between any two stores")
    .argument("<src>", "source URL or local path")
    .argument("<dst>", "destination URL or local path")
    .option("-r, --recursive", "copy every object under <src> to the same relative keys under <dst>")
    .addOption(new Option("--compress <method>", "store the copies compressed").choices(["gzip", "br", "zstd"]))
    .option("--level <n>", "compression level (gzip 1-9, br 0-11, zstd 1-22)")
    .action(async (src: string, dst: string, _opts: CpOptions, command: Command) => {
      const options = command.optsWithGlobals<CpOptions>();
      const transfer = transferOptions(options);
      if (!options.recursive) {
        if (await isLocalDirectory(src)) throw new CliError(`${src} is a directory; use cp -r`, EXIT_USAGE);
        return copyOne(src, dst, options, transfer);
      }
      const source = await openUrl(src, options);
      let keys: string[];
      try {
        ({ keys } = await listKeys(source));
        if (keys.length > 0) {
          const target = await openUrl(dst, options);
          try {
            await copyKeys(source, target, keys, transfer);
          } finally {
            await closeStore(target);
          }
        }
      } finally {
        await closeStore(source);
      }
      if (keys.length === 0) {
        // `cp -r file dst` copies the one object, as `cp -r` does for a file.
        const found = await findObject(src, options);
        if (!found) throw new CliError(`no objects at ${src}`);
        await closeStore(found.store);
        await copyOne(src, dst, options, transfer);
      }
    });
}
