/** `activestore rm <url> [-r]`: delete one object, or every object under a prefix (deleteMany). */
import type { Command } from "commander";
import { CliError, EXIT_USAGE } from "../errors.js";
import { startProgress } from "../progress.js";
import {
  closeStore,
  findObject,
  isLocalDirectory,
  listKeys,
  openObject,
  openUrl,
  type GlobalOptions,
} from "../stores.js";

interface RmOptions extends GlobalOptions {
  recursive?: boolean;
}

async function removeOne(url: string, options: RmOptions): Promise<void> {
  const { store, key } = await openObject(url, options);
  try {
    // Deleting a missing key succeeds silently in every store; a user who typed a wrong name must hear it.
    if (!(await store.has(key))) throw new CliError(`no such object: ${url}`);
    await store.delete(key);
  } finally {
    await closeStore(store);
  }
}

export function register(program: Command): void {
  program
    .command("rm")
    .description("delete an object, or with -r every object under a prefix")
    .argument("<url>", "object or prefix URL, or local path")
    .option("-r, --recursive", "delete every object under the prefix")
    .action(async (url: string, _opts: RmOptions, command: Command) => {
      const options = command.optsWithGlobals<RmOptions>();
      if (!options.recursive) {
        if (await isLocalDirectory(url)) throw new CliError(`${url} is a directory; use rm -r`, EXIT_USAGE);
        return removeOne(url, options);
      }
      const store = await openUrl(url, options);
      let count = 0;
      try {
        const { keys } = await listKeys(store);
        count = keys.length;
        if (count > 0) {
          const progress = startProgress("rm", count);
          try {
            const batch = store.deleteMany(keys, {
              concurrency: options.concurrency,
              onProgress: (p) => progress.update(p),
            });
            for await (const _ of batch);
          } finally {
            progress.stop();
          }
        }
      } finally {
        await closeStore(store);
      }
      if (count === 0) {
        // Not a prefix: perhaps the URL names one object.
        const found = await findObject(url, options);
        if (!found) throw new CliError(`no objects at ${url}`);
        try {
          await found.store.delete(found.key);
        } finally {
          await closeStore(found.store);
        }
      }
    });
}
