#!/usr/bin/env node
/**
 * The `activestore` command line: a thin layer over the library. Each command lives in its own
 * module under commands/ and registers itself on the program.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { register as registerCat } from "./commands/cat.js";
import { register as registerCombine } from "./commands/combine.js";
import { register as registerConvert } from "./commands/convert.js";
import { register as registerCp } from "./commands/cp.js";
import { register as registerDemo } from "./commands/demo.js";
import { register as registerDu } from "./commands/du.js";
import { register as registerDump } from "./commands/dump.js";
import { register as registerLs } from "./commands/ls.js";
import { register as registerReduce } from "./commands/reduce.js";
import { register as registerRefs } from "./commands/refs.js";
import { register as registerRm } from "./commands/rm.js";
import { register as registerServe } from "./commands/serve.js";
import { EXIT_USAGE, fail, isBrokenPipe } from "./errors.js";

/** The package version, found by walking up from this file (dist/cli/ in a build, src/cli/ in tests). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "activestore" && pkg.version) return pkg.version;
    } catch {
      // no package.json here; keep walking
    }
    const parent = dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

export function buildProgram(): Command {
  const program = new Command("activestore")
    .description("chunked N-d scientific data on object stores")
    .version(packageVersion(), "-V, --version")
    .option("--endpoint <url>", "S3 endpoint for S3-compatible servers (default: $AWS_ENDPOINT_URL)")
    .option("--anonymous", "unsigned requests (public buckets)")
    .addOption(new Option("--concurrency <n>", "requests in flight at once").argParser(positiveInteger))
    .addOption(
      new Option("--retries <n>", "attempts per request before giving up (default 7)").argParser(positiveInteger),
    )
    .option("--debug", "print stack traces on failure")
    .showSuggestionAfterError()
    .configureOutput({
      // Commander's own usage errors follow the same one-line shape as every other failure.
      outputError: (text, write) => write(`activestore: ${text.replace(/^error: /, "")}`),
    })
    .exitOverride();
  const commands = [registerLs, registerCat, registerCp, registerRm, registerDu];
  commands.push(registerRefs, registerCombine, registerDump, registerConvert, registerReduce, registerServe, registerDemo);
  for (const register of commands) register(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const debug = argv.includes("--debug");
  // The AWS SDK warns on every run under Node < 22; a CLI's stderr is for the user's own failures.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  process.stdout.on("error", (error) => {
    if (isBrokenPipe(error)) process.exit(0);
    fail(error, debug);
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    if (isBrokenPipe(error)) process.exit(0);
    fail(error, debug);
  }
  // Pooled keep-alive sockets must not keep a finished command alive; stdout is flushed first.
  process.stdout.write("", () => process.exit(0));
}

await main(process.argv);
