/**
 * Combining along several dimensions at once (kerchunk's `concat_dims=[...]`; xarray's nested
 * `open_mfdataset(concat_dim=[...])`): an ensemble of members each split into files by time, say.
 * The inputs are grouped by their value along the first dimension, each group is combined along the
 * remaining ones, and the groups are then combined along the first. Every rule of the single
 * dimension combination applies at each step, so a grid with a hole or a group of another length is
 * an error naming the group, never a silently misaligned result.
 */
import { ReferenceSetError } from "../errors.js";
import { ArrayReader, inputCoordinates, type CoordSource, type CoordValue } from "./combine-coords.js";
import { normaliseInputs, parseInput, type CombineInput, type ParsedInput } from "./combine-inputs.js";
import { harmoniseUnits } from "./combine-time.js";
import type { CombineOptions, CombineResult } from "./combine.js";
import type { References } from "./types.js";

type CombineOne = (list: readonly (References | CombineInput)[], options: CombineOptions) => Promise<CombineResult>;

/** Combines along `options.concatDims` (two or more), outermost first; `combineOne` does one dimension. */
export async function combineNested(
  list: readonly (References | CombineInput)[],
  options: CombineOptions,
  combineOne: CombineOne,
): Promise<CombineResult> {
  const [outer, ...inner] = options.concatDims;
  if (new Set(options.concatDims).size !== options.concatDims.length) {
    throw new ReferenceSetError(`a concatenation dimension is named twice: ${options.concatDims.join(", ")}`);
  }
  const inputs = normaliseInputs(list);
  const given = inputs.map((input, i) => parseInput(input, i));
  const source = options.coords?.[outer] ?? (given[0].arrays.has(outer) ? "variable" : undefined);
  if (source === undefined) {
    throw new ReferenceSetError(
      `"${outer}" has no coordinate variable: give its values (coords: a url pattern, an attribute or a list) to place each input along it`,
    );
  }
  const reader = new ArrayReader({ resolver: options.resolver, baseDir: options.baseDir });
  let coords = await inputCoordinates(given, outer, source, given.map((g) => lengthAlong(g, outer)), reader);
  // Times in each file's own units group by the instant they name, as the single-dimension
  // combination orders them (the values passed on stay the files' own).
  if (source === "variable") coords = harmoniseUnits(given, outer, coords as number[][]);

  // Inputs with the same value(s) along the outer dimension form one group, in the order first seen.
  const groups = new Map<string, { value: CoordValue[]; members: number[] }>();
  coords.forEach((value, i) => {
    const key = JSON.stringify(value);
    const group = groups.get(key);
    if (group) group.members.push(i);
    else groups.set(key, { value, members: [i] });
  });
  const label = (value: CoordValue[]) => `${outer}=${value.join(",")}`;
  const counts = [...groups.values()].map((g) => g.members.length);
  if (counts.some((n) => n !== counts[0])) {
    const sizes = [...groups.values()].map((g) => `${label(g.value)}: ${g.members.length}`);
    throw new ReferenceSetError(`the inputs do not form a full grid: inputs per "${outer}" differ (${sizes.join("; ")})`);
  }
  const innerCoords = { ...options.coords };
  delete innerCoords[outer];
  const notes: string[] = [];
  const combined: CombineInput[] = [];
  // Errors inside a group name its inputs (their urls); the groups are named by their value.
  for (const { value, members } of groups.values()) {
    const result = await combineOne(members.map((i) => inputs[i]), { ...options, concatDims: inner, coords: innerCoords });
    notes.push(...result.notes.map((note) => `${label(value)}: ${note}`));
    combined.push({ refs: result.references, name: label(value) });
  }
  // A url pattern or attribute cannot be read off a combined group: its values are passed on.
  const outerSource: CoordSource =
    source === "variable" ? "variable" : ([...groups.values()].flatMap((g) => g.value) as number[] | string[]);
  const result = await combineOne(combined, { ...options, concatDims: [outer], coords: { ...options.coords, [outer]: outerSource } });
  return { references: result.references, notes: [...notes, ...result.notes] };
}

/** Steps along `dim` in an input: its length in the arrays that have it, 1 for a new dimension. */
function lengthAlong(input: ParsedInput, dim: string): number {
  for (const array of input.arrays.values()) {
    const axis = array.dims?.indexOf(dim) ?? -1;
    if (axis >= 0) return array.zarray.shape[axis];
  }
  return 1;
}
