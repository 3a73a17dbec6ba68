/**
 * kerchunk's `gen` entries (spec version 1): key/url/offset/length templates rendered over the
 * Cartesian product of named dimensions. fsspec renders them with jinja2; we accept the part of
 * jinja's expression language that reference sets use — integer arithmetic, string literals,
 * concatenation — evaluated by a small parser, never by `eval`.
 */
import { ReferenceSetError } from "../errors.js";
import type { Reference } from "./types.js";

type Value = number | string;

/** Keys a reference set may generate; a `gen` block promising more is refused before expanding. */
export const MAX_GENERATED = 10_000_000;
const MAX_EXPRESSION = 1000;

/** Renders `{{ expression }}` placeholders in `text` with `vars`. */
export function render(text: string, vars: Readonly<Record<string, Value>>, where?: string): string {
  if (!text.includes("{{")) return text;
  return text.replace(/\{\{(.*?)\}\}/gs, (_, expr: string) => String(evaluate(expr, vars, where)));
}

/** Evaluates one jinja-like expression: + - * / // % ** ~, parentheses, unary minus, numbers, strings, names. */
export function evaluate(expr: string, vars: Readonly<Record<string, Value>>, where?: string): Value {
  if (expr.length > MAX_EXPRESSION) throw new ReferenceSetError(`template expression longer than ${MAX_EXPRESSION} characters`, where);
  const fail = (why: string): never => {
    throw new ReferenceSetError(`cannot evaluate {{${expr}}}: ${why}`, where);
  };
  const tokens = tokenize(expr, fail);
  let pos = 0;
  const peek = () => tokens[pos];
  const take = (op: string) => (tokens[pos] === op ? (pos++, true) : false);

  // Precedence, loosest first, as in jinja: ~, then + -, then * / // %, then unary -, then **.
  const concat = (): Value => {
    let left = additive();
    while (take("~")) left = String(left) + String(additive());
    return left;
  };
  const additive = (): Value => {
    let left = multiplicative();
    for (;;) {
      if (take("+")) {
        const right = multiplicative();
        if (typeof left === "string" && typeof right === "string") left = left + right;
        else left = num(left, "+") + num(right, "+");
      } else if (take("-")) left = num(left, "-") - num(multiplicative(), "-");
      else return left;
    }
  };
  const multiplicative = (): Value => {
    let left = unary();
    for (;;) {
      const op = peek();
      if (op !== "*" && op !== "/" && op !== "//" && op !== "%") return left;
      pos++;
      const a = num(left, op);
      const b = num(unary(), op);
      if (op === "*") left = a * b;
      else if (b === 0) fail("division by zero");
      else if (op === "/") left = a / b;
      else if (op === "//") left = Math.floor(a / b);
      else left = a - b * Math.floor(a / b); // Python's modulo takes the divisor's sign
    }
  };
  const unary = (): Value => {
    if (take("-")) return -num(unary(), "-");
    if (take("+")) return num(unary(), "+");
    return power();
  };
  const power = (): Value => {
    const base = atom();
    if (!take("**")) return base;
    return num(base, "**") ** num(unary(), "**");
  };
  const atom = (): Value => {
    const t = tokens[pos++];
    if (t === undefined) return fail("unexpected end");
    if (t === "(") {
      const v = concat();
      if (!take(")")) fail("missing )");
      return v;
    }
    if (/^\d/.test(t)) return Number(t);
    if (t[0] === '"' || t[0] === "'") return t.slice(1, -1);
    if (/^[A-Za-z_]\w*$/.test(t)) {
      if (!Object.hasOwn(vars, t)) fail(`unknown name "${t}"`);
      return vars[t];
    }
    return fail(`unexpected "${t}"`);
  };
  const num = (v: Value, op: string): number => (typeof v === "number" ? v : fail(`"${op}" needs numbers, got "${v}"`));

  const value = concat();
  if (pos !== tokens.length) fail(`unexpected "${tokens[pos]}"`);
  if (typeof value === "number" && !Number.isFinite(value)) fail("result is not finite");
  return value;
}

function tokenize(expr: string, fail: (why: string) => never): string[] {
  const tokens: string[] = [];
  const re = /\s*(\d+(?:\.\d+)?|"[^"]*"|'[^']*'|[A-Za-z_]\w*|\*\*|\/\/|[-+*/%~()])/y;
  let at = 0;
  while (at < expr.length) {
    if (/^\s*$/.test(expr.slice(at))) break;
    re.lastIndex = at;
    const m = re.exec(expr);
    if (!m) fail(`unexpected character at ${at}`);
    tokens.push(m![1]);
    at = re.lastIndex;
  }
  return tokens;
}

interface GenEntry {
  key: string;
  url: string;
  offset?: string | number;
  length?: string | number;
  dimensions: Record<string, unknown>;
}

/** The values one dimension takes: `n` (0..n-1), `{start, stop, step}` (Python's range) or a list. */
function dimensionValues(name: string, spec: unknown, where: string): Value[] | { start: number; step: number; count: number } {
  const int = (v: unknown, what: string): number => {
    if (!Number.isSafeInteger(v)) throw new ReferenceSetError(`gen dimension "${name}": ${what} must be an integer, got ${JSON.stringify(v)}`, where);
    return v as number;
  };
  if (Array.isArray(spec)) {
    if (!spec.every((v) => typeof v === "string" || Number.isFinite(v))) {
      throw new ReferenceSetError(`gen dimension "${name}": list values must be numbers or strings`, where);
    }
    return spec as Value[];
  }
  let start = 0;
  let stop: number;
  let step = 1;
  if (typeof spec === "number") stop = int(spec, "size");
  else if (typeof spec === "object" && spec !== null) {
    const s = spec as { start?: unknown; stop?: unknown; step?: unknown };
    start = s.start === undefined ? 0 : int(s.start, "start");
    stop = int(s.stop, "stop");
    step = s.step === undefined ? 1 : int(s.step, "step");
    if (step === 0) throw new ReferenceSetError(`gen dimension "${name}": step must not be 0`, where);
  } else {
    throw new ReferenceSetError(`gen dimension "${name}": expected a size, {start, stop, step} or a list`, where);
  }
  const count = step > 0 ? Math.max(0, Math.ceil((stop - start) / step)) : Math.max(0, Math.ceil((start - stop) / -step));
  return { start, step, count };
}

function checkEntry(raw: unknown, index: number): GenEntry {
  const where = `gen[${index}]`;
  const g = raw as Partial<GenEntry> | null;
  const field = (v: unknown) => v === undefined || typeof v === "string" || Number.isSafeInteger(v);
  if (
    typeof g !== "object" ||
    g === null ||
    typeof g.key !== "string" ||
    typeof g.url !== "string" ||
    !field(g.offset) ||
    !field(g.length) ||
    typeof g.dimensions !== "object" ||
    g.dimensions === null ||
    Array.isArray(g.dimensions)
  ) {
    throw new ReferenceSetError('expected {"key", "url", "dimensions", optional "offset" and "length"} with string templates', where);
  }
  if ((g.offset === undefined) !== (g.length === undefined)) {
    throw new ReferenceSetError('"offset" and "length" go together: give both or neither', where);
  }
  return g as GenEntry;
}

/**
 * Expands `gen` into key → reference, in fsspec's order (itertools.product over the dimensions in
 * the order given, the last varying fastest). `templates` are visible to the expressions too.
 */
export function expandGen(gen: readonly unknown[], templates: Readonly<Record<string, string>> = {}): Map<string, Reference> {
  const out = new Map<string, Reference>();
  gen.forEach((raw, index) => {
    const entry = checkEntry(raw, index);
    const where = `gen[${index}]`;
    const names = Object.keys(entry.dimensions);
    const dims = names.map((name) => dimensionValues(name, entry.dimensions[name], where));
    const sizes = dims.map((d) => (Array.isArray(d) ? d.length : d.count));
    const total = sizes.reduce((a, b) => a * b, 1);
    if (out.size + total > MAX_GENERATED) {
      throw new ReferenceSetError(`gen would produce more than ${MAX_GENERATED} keys`, where);
    }
    const at = (d: (typeof dims)[number], i: number): Value => (Array.isArray(d) ? d[i] : d.start + i * d.step);
    const vars: Record<string, Value> = { ...templates };
    const index_ = new Array<number>(names.length).fill(0);
    for (let n = 0; n < total; n++) {
      for (let d = 0; d < names.length; d++) vars[names[d]] = at(dims[d], index_[d]);
      const key = render(entry.key, vars, where);
      const url = render(entry.url, vars, where);
      if (entry.offset === undefined) out.set(key, [url]);
      else out.set(key, [url, integer(entry.offset, vars, where, "offset"), integer(entry.length!, vars, where, "length")]);
      for (let d = names.length - 1; d >= 0; d--) {
        if (++index_[d] < sizes[d]) break;
        index_[d] = 0;
      }
    }
  });
  return out;
}

/** A rendered offset/length: what Python's int() accepts of it, and not negative. */
function integer(template: string | number, vars: Readonly<Record<string, Value>>, where: string, what: string): number {
  const text = typeof template === "number" ? String(template) : render(template, vars, where).trim();
  const n = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new ReferenceSetError(`${what} rendered to "${text}", not a non-negative integer`, where);
  return n;
}
