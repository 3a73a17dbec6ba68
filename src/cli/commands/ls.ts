/** `activestore ls [url]`: the keys under a prefix, one level deep unless `-r`. */
import type { Command } from "commander";
import type { ObjectInfo } from "../../stores/types.js";
import { CliError } from "../errors.js";
import { baseName, closeStore, findObject, openUrl, type GlobalOptions } from "../stores.js";

interface LsOptions extends GlobalOptions {
  long?: boolean;
  recursive?: boolean;
}

function line(info: ObjectInfo, long: boolean, name = info.key): string {
  if (!long) return name;
  const modified = info.lastModified ? info.lastModified.toISOString() : "-";
  return `${String(info.size).padStart(12)}  ${modified.padEnd(24)}  ${name}`;
}

export function register(program: Command): void {
  program
    .command("ls")
    .description("list the objects under a URL prefix (immediate children; -r for all keys)")
    .argument("[url]", "store URL or local path", ".")
    .option("-l, --long", "show size and modification time")
    .option("-r, --recursive", "list every key under the prefix, not only the first level")
    .action(async (url: string, _opts: LsOptions, command: Command) => {
      const options = command.optsWithGlobals<LsOptions>();
      const long = options.long ?? false;
      const out: string[] = [];
      const store = await openUrl(url, options);
      let found = 0;
      try {
        const dirs = new Set<string>();
        for await (const info of store.list("")) {
          found++;
          const slash = info.key.indexOf("/");
          if (options.recursive || slash < 0) {
            out.push(line(info, long));
          } else {
            // Object stores have no directories: show each first-level prefix once, like `aws s3 ls`.
            const dir = info.key.slice(0, slash + 1);
            if (!dirs.has(dir)) {
              dirs.add(dir);
              out.push(long ? `${"PRE".padStart(12)}  ${"".padEnd(24)}  ${dir}` : dir);
            }
          }
          if (out.length >= 1000) process.stdout.write(out.splice(0).join("\n") + "\n");
        }
      } finally {
        await closeStore(store);
      }
      if (found === 0) {
        // Not a prefix: perhaps the URL names one object.
        const found = await findObject(url, options);
        if (!found) throw new CliError(`no objects at ${url}`);
        await closeStore(found.store);
        out.push(line(found.info, long, baseName(found.key)));
      }
      if (out.length > 0) process.stdout.write(out.join("\n") + "\n");
    });
}
