/** `activestore du <url>`: total stored bytes and object count under a prefix. */
import type { Command } from "commander";
import { CliError } from "../errors.js";
import { formatBytes } from "../progress.js";
import { closeStore, findObject, openUrl, type GlobalOptions } from "../stores.js";

interface DuOptions extends GlobalOptions {
  humanReadable?: boolean;
}

export function register(program: Command): void {
  program
    .command("du")
    .description("total size (as stored) and number of objects under a prefix")
    // -h means human-readable here, as in du(1); help stays on --help.
    .helpOption("--help", "display help for command")
    .argument("[url]", "prefix URL or local path", ".")
    .option("-h, --human-readable", "sizes in KiB, MiB, GiB")
    .action(async (url: string, _opts: DuOptions, command: Command) => {
      const options = command.optsWithGlobals<DuOptions>();
      const store = await openUrl(url, options);
      let bytes = 0;
      let objects = 0;
      try {
        for await (const info of store.list("")) {
          bytes += info.size;
          objects++;
        }
      } finally {
        await closeStore(store);
      }
      if (objects === 0) {
        // Perhaps the URL names a single object rather than a prefix.
        const found = await findObject(url, options);
        if (!found) throw new CliError(`no objects at ${url}`);
        await closeStore(found.store);
        bytes = found.info.size;
        objects = 1;
      }
      const size = options.humanReadable ? formatBytes(bytes) : String(bytes);
      process.stdout.write(`${size}\t${objects} object${objects === 1 ? "" : "s"}\t${url}\n`);
    });
}
