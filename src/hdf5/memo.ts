/** Per-file caches of parsed structures. */

/**
 * Shares one in-flight or finished read per key. A failure is not kept: the store error may be
 * transient, and a later call should try again rather than replay it.
 */
export function memo<K, V>(cache: Map<K, Promise<V>>, key: K, read: () => Promise<V>): Promise<V> {
  let p = cache.get(key);
  if (!p) {
    const fresh = read();
    cache.set(key, fresh);
    fresh.catch(() => {
      if (cache.get(key) === fresh) cache.delete(key);
    });
    p = fresh;
  }
  return p;
}
