import cliProgress from "cli-progress";

export interface Progress {
  update(done: number, fields?: Record<string, unknown>): void;
  stop(): void;
}

/**
 * A bar on a terminal; periodic JSON lines (at most one per `everyMs`, plus the
 * last) when stderr is not a TTY, so logs of batch jobs stay parseable.
 */
export function createProgress(label: string, total: number, everyMs = 2000): Progress {
  if (process.stderr.isTTY && !process.env.CI) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { update: (d) => bar.update(d), stop: () => bar.stop() };
  }
  let last = 0;
  let latest: { done: number; fields?: Record<string, unknown> } = { done: 0 };
  let emitted: unknown;
  const emit = () => {
    emitted = latest;
    process.stderr.write(JSON.stringify({ progress: label, done: latest.done, total, ...latest.fields, time: new Date().toISOString() }) + "\n");
  };
  return {
    update(done, fields) {
      latest = { done, fields };
      const now = Date.now();
      if (now - last >= everyMs) {
        last = now;
        emit();
      }
    },
    stop() {
      // The last state, unless that very line was just written.
      if (emitted !== latest) emit();
    },
  };
}
