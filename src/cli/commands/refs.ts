/** `activestore refs <file-or-url>`: the kerchunk reference set of an HDF5/netCDF-4 file as JSON. */
import { writeFile } from "node:fs/promises";
import { dirname, relative, resolve } from "node:path";
import cliProgress from "cli-progress";
import { InvalidArgumentError, type Command } from "commander";
import { buildReferencesWithWarnings } from "../../refs/build.js";
import { toJson } from "../../refs/json.js";
import type { GlobalOptions } from "../stores.js";
import { isLocal, openSource } from "./remote.js";

interface RefsOptions extends GlobalOptions {
  output?: string;
  inlineThreshold?: number;
  url?: string;
}

/**
 * The url written into the references: as given for remote files; for a local path, relative to
 * the output file's directory (so the pair can move together), or absolute when writing to stdout.
 */
function referenceUrl(input: string, output: string | undefined): string {
  if (!isLocal(input) || input.startsWith("file://")) return input;
  return output ? relative(dirname(resolve(output)), resolve(input)) : resolve(input);
}

function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a non-negative integer (bytes)");
  return n;
}

/** A chunk counter on a terminal; nothing when stderr is piped or the file has few chunks. */
function chunkProgress(stream = process.stderr): { update(done: number, total: number): void; stop(): void } {
  if (!stream.isTTY) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total) {
      if (!bar && total >= 1000) {
        bar = new cliProgress.SingleBar(
          { stream, format: "refs [{bar}] {value}/{total} chunks", hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
      }
      bar?.update(done);
    },
    stop: () => bar?.stop(),
  };
}

export function register(program: Command): void {
  program
    .command("refs")
    .description("write the kerchunk references (JSON) of an HDF5 / netCDF-4 file")
    .argument("<file-or-url>", "local path or store URL of the HDF5 file")
    .option("-o, --output <file>", "write the JSON here instead of stdout")
    .option("--inline-threshold <bytes>", "inline chunks smaller than this (default 500)", nonNegativeInteger)
    .option("--url <url>", "url to write into the references (default: the input, local paths relative to -o)")
    .action(async (url: string, _opts: RefsOptions, command: Command) => {
      const options = command.optsWithGlobals<RefsOptions>();
      const { source, close } = await openSource(url, options);
      const progress = chunkProgress();
      try {
        const { references, warnings } = await buildReferencesWithWarnings(source, {
          url: options.url ?? referenceUrl(url, options.output),
          inlineThreshold: options.inlineThreshold,
          onProgress: (done, total) => progress.update(done, total),
        });
        progress.stop();
        for (const w of warnings) process.stderr.write(`activestore: warning: ${w.path}: ${w.message}\n`);
        const json = toJson(references);
        if (options.output) await writeFile(options.output, json + "\n");
        else process.stdout.write(json + "\n");
      } finally {
        progress.stop();
        await close();
      }
    });
}
