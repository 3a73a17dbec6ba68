/** Markdown tables of benchmark results, with ratios against the baselines of the same run. */
import type { Measurement } from "./measure.js";

export interface Group {
  /** `HttpStore (nginx) · read · 3000 × 64 KiB` */
  title: string;
  ours: Measurement;
  loop?: Measurement;
  rclone?: Measurement;
  /** Why a baseline is absent. */
  note?: string;
}

const fixed = (n: number, digits = 1) => n.toFixed(digits);

function row(m: Measurement): string {
  return `| ${m.label} | ${m.objects} | ${fixed(m.bytes / 1e6, 0)} | ${fixed(m.seconds, 2)} | ${fixed(
    m.objectsPerSecond,
    0,
  )} | ${fixed(m.megabytesPerSecond)} | ${fixed(m.peakRssMiB, 0)} |`;
}

function ratio(ours: Measurement, base: Measurement | undefined): string {
  return base ? `${fixed(base.seconds / ours.seconds, 2)}×` : "n/a";
}

export function renderGroups(groups: Group[]): string {
  const lines: string[] = [];
  lines.push("| case | objects | MB | seconds | objects/s | MB/s | peak RSS MiB |", "|---|---:|---:|---:|---:|---:|---:|");
  for (const g of groups) {
    lines.push(`| **${g.title}** | | | | | | |`);
    for (const m of [g.ours, g.loop, g.rclone]) if (m) lines.push(row(m));
  }
  lines.push("", "Speed-up of the batched call (time of baseline ÷ time of ours; > 1 means ours is faster):", "");
  lines.push("| case | vs one-at-a-time loop | vs rclone copy | note |", "|---|---:|---:|---|");
  for (const g of groups) {
    lines.push(`| ${g.title} | ${ratio(g.ours, g.loop)} | ${ratio(g.ours, g.rclone)} | ${g.note ?? ""} |`);
  }
  return lines.join("\n");
}
