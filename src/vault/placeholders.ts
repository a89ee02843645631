// Secret placeholders, `${secret:NAME}`: how they are found, told apart from near-misses, and
// replaced. A URL path percent-encodes braces, so `$%7Bsecret:NAME%7D` is the same placeholder.
// Nothing here touches a value's source; substitution takes the values it is handed.

const NAME = "[A-Za-z_][A-Za-z0-9_.-]{0,63}";
/** A well-formed placeholder, written plainly or with percent-encoded braces. */
const STRICT = new RegExp(`\\$(?:\\{|%7[bB])secret:(${NAME})(?:\\}|%7[dD])`, "g");
/** Anything a reader might take for a placeholder: spaces, case, encoded braces. */
const LOOSE = /\$(?:\{|%7b)\s*secret\s*:/i;
const LOOSE_ALL = new RegExp(LOOSE.source, "gi");

/** The names of the well-formed placeholders in `text`, each once, in order of appearance. */
export function placeholderNames(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(STRICT)) out.add(m[1] as string);
  return [...out];
}

/** Whether `text` holds anything that looks like a placeholder, well-formed or not. */
export function mentionsPlaceholder(text: string): boolean {
  return LOOSE.test(text);
}

/**
 * Whether `text` holds a placeholder that is not well-formed (`${secret: x}`, `${SECRET:x}`, a name
 * with spaces, no closing brace): every near-miss must be an error, never go out literally.
 */
export function malformedPlaceholder(text: string): boolean {
  const loose = [...text.matchAll(LOOSE_ALL)].length;
  const strict = [...text.matchAll(STRICT)].length;
  return loose !== strict;
}

/**
 * `text` with each placeholder replaced by its value, passed through `encode` (for example
 * encodeURIComponent in a URL). Placeholders whose name has no value stay as they are.
 */
export function substitutePlaceholders(
  text: string,
  values: ReadonlyMap<string, string>,
  encode: (value: string) => string = (v) => v,
): string {
  return text.replace(STRICT, (whole, name: string) => {
    const v = values.get(name);
    return v === undefined ? whole : encode(v);
  });
}
