/**
 * A strict JSON parser that keeps every number as its literal text. `JSON.parse` turns
 * 18446744073709551615 into 18446744073709552000, and an int64 missing value or a uint64 valid_max
 * must reach the kernel exactly; it also cannot tell `-1` from `-1.0`, which Reductionist refuses
 * as a missing value for an integer dtype. Depth and size are bounded by the caller's body limit
 * and MAX_DEPTH here, so a hostile body cannot recurse the stack away.
 */
import { RequestError } from "../errors.js";

/** A JSON number literal, unconverted. */
export class JsonNumber {
  constructor(readonly text: string) {}
  /** Written without fraction or exponent. */
  get isInteger(): boolean {
    return !/[.eE]/.test(this.text);
  }
  toBigInt(): bigint {
    return BigInt(this.text);
  }
  toNumber(): number {
    return Number(this.text);
  }
  toJSON(): number {
    return this.toNumber();
  }
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };

const MAX_DEPTH = 32;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export function parseJson(text: string): JsonValue {
  let at = 0;
  const fail = (what: string): never => {
    throw new RequestError(`request body is not valid JSON: ${what} at character ${at}`);
  };
  const space = () => {
    while (at < text.length && (text[at] === " " || text[at] === "\n" || text[at] === "\r" || text[at] === "\t")) at++;
  };
  const string = (): string => {
    at++; // opening quote
    let out = "";
    for (;;) {
      if (at >= text.length) fail("unterminated string");
      const c = text[at++];
      if (c === '"') return out;
      if (c < " ") fail("control character in string");
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[at++];
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e in simple) out += simple[e];
      else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(at, at + 4))) {
        out += String.fromCharCode(parseInt(text.slice(at, at + 4), 16));
        at += 4;
      } else fail("bad escape in string");
    }
  };
  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    space();
    const c = text[at];
    if (c === "{") {
      at++;
      const obj: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
      space();
      if (text[at] === "}") return at++, obj;
      for (;;) {
        space();
        if (text[at] !== '"') fail("expected a key");
        const key = string();
        if (key in obj) fail(`duplicate key "${key}"`);
        space();
        if (text[at++] !== ":") fail("expected ':'");
        obj[key] = value(depth + 1);
        space();
        const next = text[at++];
        if (next === "}") return obj;
        if (next !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      at++;
      const list: JsonValue[] = [];
      space();
      if (text[at] === "]") return at++, list;
      for (;;) {
        list.push(value(depth + 1));
        space();
        const next = text[at++];
        if (next === "]") return list;
        if (next !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, at)) return (at += word.length), v;
    }
    NUMBER.lastIndex = at;
    const m = NUMBER.exec(text);
    if (!m || m[0] === "" ) return fail("unexpected character");
    at += m[0].length;
    return new JsonNumber(m[0]);
  };
  const result = value(0);
  space();
  if (at !== text.length) fail("trailing characters");
  return result;
}
