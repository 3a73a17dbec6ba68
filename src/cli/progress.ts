/**
 * Progress for long transfers: a cli-progress bar when stderr is a terminal, nothing otherwise, so
 * piped or scripted runs get clean output.
 */
import cliProgress from "cli-progress";
import type { BatchProgress } from "../stores/types.js";

export interface Progress {
  update(progress: BatchProgress): void;
  stop(): void;
}

const silent: Progress = { update() {}, stop() {} };

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** `label` names the operation; `total` is the object count when known up front. */
export function startProgress(label: string, total: number | undefined, stream = process.stderr): Progress {
  if (!stream.isTTY) return silent;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {value}/{total} objects | {moved} | {rate}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(total ?? 0, 0, { moved: formatBytes(0), rate: "-" });
  return {
    update({ done, total: known, bytes }) {
      const seconds = (Date.now() - started) / 1000;
      if (known !== undefined) bar.setTotal(known);
      else if (done > bar.getTotal()) bar.setTotal(done);
      bar.update(done, {
        moved: formatBytes(bytes),
        rate: seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : "-",
      });
    },
    stop() {
      bar.stop();
    },
  };
}
