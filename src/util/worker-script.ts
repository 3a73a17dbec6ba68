/**
 * Where a worker thread's compiled script is. Compiled (dist/), it sits next to the module that
 * starts it. Running from TypeScript sources (vitest), workers cannot load `.ts`, so the dist/ twin
 * is used (`npm test` builds dist/ first). Undefined when neither exists: callers then work in-thread.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const found = new Map<string, URL | undefined>();

export function workerScript(moduleUrl: string, name: string): URL | undefined {
  const cacheKey = `${moduleUrl}#${name}`;
  if (found.has(cacheKey)) return found.get(cacheKey);
  let base = moduleUrl;
  if (moduleUrl.endsWith(".ts")) {
    const at = moduleUrl.lastIndexOf("/src/");
    base = at < 0 ? moduleUrl : `${moduleUrl.slice(0, at)}/dist/${moduleUrl.slice(at + "/src/".length)}`;
  }
  const candidate = new URL(`./${name}.js`, base);
  const script = candidate.protocol === "file:" && existsSync(fileURLToPath(candidate)) ? candidate : undefined;
  found.set(cacheKey, script);
  return script;
}
