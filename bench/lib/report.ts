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
  const cells = [
    m.label,
    String(m.objects),
    fixed(m.bytes / 1e6, 0),
    fixed(m.seconds, 2),
    fixed(m.objectsPerSecond, 0),
    fixed(m.megabytesPerSecond),
    fixed(m.cpuSeconds, 2),
    fixed(m.peakRssMiB, 0),
  ];
  return `| ${cells.join(" | ")} |`;
}

function cpuRatio(ours: Measurement, base: Measurement | undefined): string {
  return base ? `${fixed(base.cpuSeconds / ours.cpuSeconds, 2)}×` : "n/a";
}

function ratio(ours: Measurement, base: Measurement | undefined): string {
  return base ? `${fixed(base.seconds / ours.seconds, 2)}×` : "n/a";
}

export function renderGroups(groups: Group[]): string {
  const lines: string[] = [];
  lines.push(
    "| case | objects | MB | seconds | objects/s | MB/s | client CPU s | peak RSS MiB |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const g of groups) {
    lines.push(`| **${g.title}** | | | | | | | |`);
    for (const m of [g.ours, g.loop, g.rclone]) if (m) lines.push(row(m));
  }
  lines.push(
    "",
    "Ratios of the batched call against the baselines of the same run (baseline ÷ ours, so > 1 means ours",
    "is faster or cheaper): wall time, and client CPU seconds.",
    "",
  );
  lines.push(
    "| case | time vs loop | time vs rclone | CPU vs loop | CPU vs rclone | note |",
    "|---|---:|---:|---:|---:|---|",
  );
  for (const g of groups) {
    const cells = [
      g.title,
      ratio(g.ours, g.loop),
      ratio(g.ours, g.rclone),
      cpuRatio(g.ours, g.loop),
      cpuRatio(g.ours, g.rclone),
      g.note ?? "",
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}
