/**
 * `_ARRAY_DIMENSIONS` (the xarray convention for zarr) from HDF5 dimension scales, named the way
 * netCDF-C names them:
 * - a dimension is named after its scale dataset, without the group prefix and without netCDF's
 *   `_nc4_non_coord_` prefix;
 * - scales netCDF-C made only to carry a dimension ("This is a netCDF dimension but not a netCDF
 *   variable") are not variables and are left out as arrays;
 * - datasets without scales get netCDF-C's phony dimensions `phony_dim_N`: one per distinct
 *   (size, unlimited) pair within a group, never twice in one variable, numbered file-wide with
 *   child groups matched before their parent's datasets, as netCDF-C does.
 */
import type { Attribute, AttributeValue, Dataset, Group, Node } from "../hdf5/model.js";

const DIMENSION_ONLY = "This is a netCDF dimension but not a netCDF variable";
const NON_COORD_PREFIX = "_nc4_non_coord_";

export interface DimensionInfo {
  /** `_ARRAY_DIMENSIONS` by dataset path; absent for datasets with a null dataspace. */
  names: Map<string, string[]>;
  /** Paths of dimension-only scales, which are not arrays. */
  dimensionOnly: Set<string>;
}

export function resolveDimensions(root: Group): DimensionInfo {
  const datasets: Dataset[] = [];
  collect(root, datasets);
  const byAddress = new Map(datasets.map((d) => [d.address, d]));
  const names = new Map<string, string[]>();
  const dimensionOnly = new Set<string>();
  // netCDF dimension ids → scale names, for `_Netcdf4Coordinates` of multi-dimensional coordinates.
  const byDimid = new Map<number, string>();
  let scales = 0;
  for (const d of datasets) {
    if (!isScale(d)) continue;
    scales++;
    if (text(attr(d, "NAME"))?.startsWith(DIMENSION_ONLY)) dimensionOnly.add(d.path);
    const dimid = attr(d, "_Netcdf4Dimid")?.value;
    if (typeof dimid === "number") byDimid.set(dimid, dimensionName(d));
  }

  const needPhony = new Set<string>();
  for (const d of datasets) {
    if (d.shape === null || dimensionOnly.has(d.path)) continue;
    const resolved = fromScales(d, byAddress, byDimid);
    if (resolved && resolved.length === d.shape.length) names.set(d.path, resolved);
    else if (d.shape.length === 0) names.set(d.path, []);
    else needPhony.add(d.path);
  }
  // netCDF-C only makes variables of datasets whose types it maps; h5py's transient enums (bool
  // included) and compounds are skipped there, so they must not take phony numbers from the rest.
  const visible = new Set([...needPhony].filter((p) => netcdfReadable(datasetsByPath(datasets).get(p)!)));
  const counter = { next: scales };
  assignPhony(root, visible, names, counter);
  assignPhony(root, new Set([...needPhony].filter((p) => !visible.has(p))), names, counter);
  return { names, dimensionOnly };
}

function fromScales(
  d: Dataset,
  byAddress: Map<number, Dataset>,
  byDimid: Map<number, string>,
): string[] | undefined {
  const coords = attr(d, "_Netcdf4Coordinates")?.value;
  if (isScale(d)) {
    if (Array.isArray(coords) && coords.length > 1) return mapDimids(coords, byDimid);
    return [dimensionName(d)];
  }
  const list = attr(d, "DIMENSION_LIST")?.value;
  if (Array.isArray(list)) {
    const out: string[] = [];
    for (const refs of list) {
      const first = Array.isArray(refs) ? refs[0] : refs;
      const scale = typeof first === "number" ? byAddress.get(first) : undefined;
      if (!scale) return undefined;
      out.push(dimensionName(scale));
    }
    return out;
  }
  if (Array.isArray(coords)) return mapDimids(coords, byDimid);
  return undefined;
}

function mapDimids(ids: AttributeValue[], byDimid: Map<number, string>): string[] | undefined {
  const out: string[] = [];
  for (const id of ids) {
    const name = typeof id === "number" ? byDimid.get(id) : undefined;
    if (name === undefined) return undefined;
    out.push(name);
  }
  return out;
}

interface PhonyDim {
  name: string;
  size: number;
  unlimited: boolean;
}

function assignPhony(
  group: Group,
  need: Set<string>,
  names: Map<string, string[]>,
  counter: { next: number },
): void {
  // HDF5 iterates links by name unless creation order is tracked; h5py-written files (the usual
  // source of scale-less datasets) do not track it.
  const children = [...group.children].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const child of children) if (child.kind === "group") assignPhony(child, need, names, counter);
  const dims: PhonyDim[] = [];
  for (const child of children) {
    if (child.kind !== "dataset" || !need.has(child.path) || child.shape === null) continue;
    const used = new Set<PhonyDim>();
    const out: string[] = [];
    child.shape.forEach((size, i) => {
      const unlimited = child.maxShape?.[i] === null;
      let dim = dims.find((p) => p.size === size && p.unlimited === unlimited && !used.has(p));
      if (!dim) {
        dim = { name: `phony_dim_${counter.next++}`, size, unlimited };
        dims.push(dim);
      }
      used.add(dim);
      out.push(dim.name);
    });
    names.set(child.path, out);
  }
}

function datasetsByPath(datasets: Dataset[]): Map<string, Dataset> {
  return new Map(datasets.map((d) => [d.path, d]));
}

function netcdfReadable(d: Dataset): boolean {
  return ["integer", "float", "string", "vlen-string"].includes(d.type.class);
}

function collect(node: Node, out: Dataset[]): void {
  if (node.kind === "dataset") out.push(node);
  else if (node.kind === "group") for (const child of node.children) collect(child, out);
}

function attr(node: Dataset, name: string): Attribute | undefined {
  return node.attributes.find((a) => a.name === name);
}

function isScale(d: Dataset): boolean {
  return text(attr(d, "CLASS")) === "DIMENSION_SCALE";
}

function dimensionName(scale: Dataset): string {
  return scale.name.startsWith(NON_COORD_PREFIX) ? scale.name.slice(NON_COORD_PREFIX.length) : scale.name;
}

function text(a: Attribute | undefined): string | undefined {
  const v = Array.isArray(a?.value) ? a.value[0] : a?.value;
  if (typeof v === "string") return v.replace(/\0+$/, "");
  if (v instanceof Uint8Array) return new TextDecoder().decode(v).replace(/\0+$/, "");
  return undefined;
}

/**
 * netCDF-C shows a variable along an unlimited dimension with the dimension's length (the longest
 * variable along it), reading the fill value past the variable's own extent; xarray needs the same
 * to line variables up. Returns the extended shapes that differ from the HDF5 ones. Dimensions are
 * matched by name, which is exact within a group and approximate across groups.
 */
export function netcdfExtents(root: Group, names: Map<string, string[]>): Map<string, number[]> {
  const datasets: Dataset[] = [];
  collect(root, datasets);
  const unlimited = (d: Dataset, i: number) => d.maxShape?.[i] === null;
  const longest = new Map<string, number>();
  for (const d of datasets) {
    const dims = names.get(d.path);
    if (!dims || !d.shape) continue;
    d.shape.forEach((n, i) => {
      if (unlimited(d, i)) longest.set(dims[i], Math.max(longest.get(dims[i]) ?? 0, n));
    });
  }
  const out = new Map<string, number[]>();
  for (const d of datasets) {
    const dims = names.get(d.path);
    if (!dims || !d.shape) continue;
    const shape = d.shape.map((n, i) => (unlimited(d, i) ? Math.max(n, longest.get(dims[i]) ?? n) : n));
    if (shape.some((n, i) => n !== d.shape![i])) out.set(d.path, shape);
  }
  return out;
}
