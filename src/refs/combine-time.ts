/**
 * CF time coordinates ("<unit> since <date>") in different units per input: producers often write
 * each file's times relative to the file's own start. Values are moved to one set of units, which
 * is exact arithmetic on real calendars (standard / gregorian after 1582, proleptic_gregorian).
 * Calendars without a fixed relation to those (noleap, 360_day, julian...) are not converted.
 */
import { ReferenceSetError } from "../errors.js";
import type { ParsedInput } from "./combine-inputs.js";

const SECONDS: Record<string, number> = {
  microseconds: 1e-6,
  microsecond: 1e-6,
  us: 1e-6,
  milliseconds: 1e-3,
  millisecond: 1e-3,
  ms: 1e-3,
  seconds: 1,
  second: 1,
  secs: 1,
  sec: 1,
  s: 1,
  minutes: 60,
  minute: 60,
  mins: 60,
  min: 60,
  hours: 3600,
  hour: 3600,
  hrs: 3600,
  hr: 3600,
  h: 3600,
  days: 86400,
  day: 86400,
  d: 86400,
  weeks: 604800,
  week: 604800,
};

const CONVERTIBLE = new Set(["standard", "gregorian", "proleptic_gregorian"]);

/** First day of the Gregorian calendar: before it, "standard" is Julian and not converted here. */
const GREGORIAN_START = Date.UTC(1582, 9, 15);

interface TimeUnits {
  /** Seconds per unit. */
  scale: number;
  /** The epoch, in milliseconds since 1970-01-01T00:00:00Z. */
  epochMs: number;
}

/** Parses CF time units; undefined when they are not "<unit> since <date>" on a convertible calendar. */
export function parseTimeUnits(units: unknown, calendar: unknown): TimeUnits | undefined {
  if (typeof units !== "string") return undefined;
  const cal = typeof calendar === "string" ? calendar.toLowerCase() : "standard";
  if (!CONVERTIBLE.has(cal)) return undefined;
  const m = /^\s*(\w+)\s+since\s+(-?\d{1,4})-(\d{1,2})-(\d{1,2})(?:[T\s]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?\s*(Z|UTC|[+-]\d{1,2}(?::?\d{2})?)?\s*$/i.exec(units);
  if (!m) return undefined;
  const scale = SECONDS[m[1].toLowerCase()];
  if (scale === undefined) return undefined;
  const [year, month, day, hour, minute] = [m[2], m[3], m[4], m[5] ?? "0", m[6] ?? "0"].map(Number);
  const second = Number(m[7] ?? "0");
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second >= 61) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, 0, 0);
  let epochMs = date.getTime() + second * 1000;
  const zone = m[8];
  if (zone && !/^(Z|UTC)$/i.test(zone)) {
    const z = /^([+-])(\d{1,2}):?(\d{2})?$/.exec(zone)!;
    const offset = (Number(z[2]) * 60 + Number(z[3] ?? "0")) * 60_000;
    epochMs -= z[1] === "+" ? offset : -offset;
  }
  if (cal !== "proleptic_gregorian" && epochMs < GREGORIAN_START) return undefined;
  return { scale, epochMs };
}

/**
 * `values` in `from` units expressed in `to` units, or undefined when either cannot be parsed
 * (the caller then refuses to mix them).
 */
export function convertTimes(values: number[], from: unknown, to: unknown, calendar: unknown): number[] | undefined {
  if (from === to) return values;
  const a = parseTimeUnits(from, calendar);
  const b = parseTimeUnits(to, calendar);
  if (!a || !b) return undefined;
  const shift = (a.epochMs - b.epochMs) / 1000 / b.scale;
  const ratio = a.scale / b.scale;
  return values.map((v) => v * ratio + shift);
}

/**
 * Each input's coordinate values in the units of `inputs[0]`'s coordinate variable. Inputs in other
 * units are converted when both are CF time units on a convertible calendar; otherwise it is an error.
 */
export function harmoniseUnits(inputs: readonly ParsedInput[], dim: string, coords: number[][]): number[][] {
  const like = inputs[0].arrays.get(dim);
  if (!like) return coords;
  return coords.map((values, i) => {
    const attrs = inputs[i].arrays.get(dim)?.attrs ?? {};
    if (JSON.stringify(attrs.units) === JSON.stringify(like.attrs.units)) return values;
    if (JSON.stringify(attrs.calendar) === JSON.stringify(like.attrs.calendar)) {
      const converted = convertTimes(values, attrs.units, like.attrs.units, like.attrs.calendar);
      if (converted) return converted;
    }
    throw new ReferenceSetError(
      `${inputs[i].name}: coordinate units ${JSON.stringify(attrs.units)} differ from ${JSON.stringify(like.attrs.units)} in ${inputs[0].name} ` +
        "and cannot be converted (only CF time units on standard/proleptic_gregorian calendars are); give the values with coords",
      `${dim}/.zattrs`,
    );
  });
}
