// Small guards for values a client controls: how much of them a reply may echo, and maps keyed by
// names a client chooses.

/**
 * At most `max` characters of `s`, marked when cut, so an error reply never echoes more than a
 * bounded prefix of what a client sent (a 1 MiB method name must not become a 2 MiB reply).
 */
export function clip(s: string, max = 128): string {
  if (s.length <= max) return s;
  let head = s.slice(0, max);
  // Never end on half a surrogate pair: the reply must stay valid UTF-16 / UTF-8.
  const last = head.charCodeAt(head.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1);
  return `${head}…[${s.length - head.length} more characters]`;
}

/**
 * `obj[key] = value` for a key a client names (a header or environment variable name): always an
 * own property, so `__proto__` is stored like any other name instead of replacing the prototype
 * (or being dropped without a word).
 */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
