import type { Command } from "commander";
import { run } from "../errors.js";

function fmt(x: number | null): string {
  if (x === null) return "inf";
  return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e6 ? x.toPrecision(6) : x.toExponential(5);
}

export function registerFar(program: Command): void {
  program
    .command("far")
    .description("FAR curve and foreground significance from events files (any HDF5 writer, DESIGN.md events layout)")
    .requiredOption("--background <file>", "background events file (e.g. background.h5)")
    .option("--foreground <file>", "foreground (zero-lag) events file")
    .option("--points <n>", "at most this many FAR-curve points (0: every distinct statistic)", "500")
    .option("--json", "print JSON: report.json's livetime, far_curve and foreground")
    .addHelpText("after", "\nExamples:\n  timeslide far --background results/o3a/background.h5 --foreground results/o3a/foreground.h5\n  timeslide far --background other-pipeline-bg.h5 --json")
    .action((opts: { background: string; foreground?: string; points: string; json?: boolean }) =>
      run(async () => {
        const points = Number(opts.points);
        if (!Number.isInteger(points) || points < 0) throw new Error(`--points: expected a whole number >= 0, got ${opts.points}`);
        // loaded on use: the plotting stack behind the aggregator should not slow every other command
        const { farFromFiles } = await import("@timeslide/aggregator");
        const res = await farFromFiles({ background: opts.background, foreground: opts.foreground, maxPoints: points || Infinity });
        if (opts.json) {
          process.stdout.write(JSON.stringify(res) + "\n");
          return;
        }
        const l = res.livetime;
        const lines = [`background livetime ${l.background_s} s (${fmt(l.background_years)} yr), foreground livetime ${l.foreground_s} s`];
        if (res.foreground.length) {
          lines.push("time                 detection_statistic   far_per_year   ifar_years     p_value");
          for (const c of res.foreground) {
            const b = c.saturated ? "<=" : "  ";
            lines.push(`${c.time.toFixed(4).padEnd(20)} ${fmt(c.detection_statistic).padEnd(20)} ${b}${fmt(c.far_per_year).padEnd(12)} ${c.saturated ? ">=" : "  "}${fmt(c.ifar_years).padEnd(12)} ${b}${fmt(c.p_value)}`);
          }
          if (res.foreground.some((c) => c.saturated)) lines.push("<= / >=: saturated (no background event as loud); the value is a bound");
        } else {
          lines.push(`FAR curve: ${res.far_curve.length} points; loudest background ${res.far_curve.length ? fmt(res.far_curve[0].detection_statistic) : "-"}`);
        }
        process.stdout.write(lines.join("\n") + "\n");
      }),
    );
}
