/**
 * How the CLI turns a URL and its global options into a store. Everything goes through the
 * library's `openStore` / `splitUrl` so the CLI opens stores exactly as library users do.
 */
import { openStore, splitUrl, type OpenStoreOptions } from "../stores/open.js";
import { InvalidKeyError } from "../errors.js";
import type { ObjectInfo, Store } from "../stores/types.js";
import { CliError } from "./errors.js";

/** Options every command understands (declared on the program in main.ts). */
export interface GlobalOptions {
  endpoint?: string;
  anonymous?: boolean;
  concurrency?: number;
  /** Attempts per request, including the first. */
  retries?: number;
  debug?: boolean;
}

/** The store options the global flags stand for. */
export function storeOptions(options: GlobalOptions): OpenStoreOptions {
  return {
    ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
    ...(options.retries !== undefined && { retry: { attempts: options.retries } }),
    s3: {
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      ...(options.anonymous && { anonymous: true }),
    },
    gcs: { ...(options.anonymous && { anonymous: true }) },
  };
}

/** The store rooted at `url` (a directory or key prefix). */
export async function openUrl(url: string, options: GlobalOptions): Promise<Store> {
  return openStore(url, storeOptions(options));
}

/** The store holding the object at `url`, and the object's key in it. */
export async function openObject(url: string, options: GlobalOptions): Promise<{ store: Store; key: string }> {
  const { storeUrl, key } = splitUrl(url);
  if (!key) throw new CliError(`${url} names a store root, not an object`);
  return { store: openStore(storeUrl, storeOptions(options)), key };
}

/**
 * The object at `url` if there is one; `undefined` when nothing is there or the URL cannot name an
 * object (a bucket root, a path outside any directory). Failures to ask are thrown, never read as
 * "nothing there". The caller closes the returned store.
 */
export async function findObject(
  url: string,
  options: GlobalOptions,
): Promise<{ store: Store; key: string; info: ObjectInfo } | undefined> {
  let opened: { store: Store; key: string };
  try {
    opened = await openObject(url, options);
  } catch (error) {
    if (error instanceof InvalidKeyError || error instanceof CliError) return undefined;
    throw error;
  }
  let info: ObjectInfo | undefined;
  try {
    info = await opened.store.head(opened.key);
  } catch (error) {
    await closeStore(opened.store);
    if (error instanceof InvalidKeyError) return undefined;
    throw error;
  }
  if (info) return { ...opened, info };
  await closeStore(opened.store);
  return undefined;
}

/** Stores hold pooled connections; close them so the process can exit promptly. */
export async function closeStore(store: Store): Promise<void> {
  await (store as Store & { close?: () => Promise<void> }).close?.();
}

/** Last `/`-separated segment of a key or URL path. */
export function baseName(key: string): string {
  const trimmed = key.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/** Whether a URL is written as a directory (trailing slash), so a copy goes *into* it. */
export function looksLikeDirectory(url: string): boolean {
  return url.endsWith("/") || url === "." || url === "..";
}

/** Whether `url` is a local path (bare or file://) naming an existing directory. */
export async function isLocalDirectory(url: string): Promise<boolean> {
  const { stat } = await import("node:fs/promises");
  const { fileURLToPath } = await import("node:url");
  let path: string;
  if (url.startsWith("file://")) path = fileURLToPath(url);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return false;
  else path = url;
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Every key under the store root, as a list (keys are small; the objects are streamed). */
export async function listKeys(store: Store): Promise<{ keys: string[]; bytes: number }> {
  const keys: string[] = [];
  let bytes = 0;
  for await (const info of store.list("")) {
    keys.push(info.key);
    bytes += info.size;
  }
  return { keys, bytes };
}
