import type { Command } from "commander";
import { formatDuration } from "@timeslide/segments";
import { planSummary, prepareCampaign, type Plan } from "@timeslide/campaign";
import { run } from "../errors.js";

export function describePlan(plan: Plan): string {
  const s = planSummary(plan);
  const analysable = plan.segments.reduce((a, x) => a + x.duration, 0);
  const lines = [
    `campaign ${s.campaign} (${s.ifos.join(", ")})`,
    `  analysable: ${s.segments.length} segment(s), ${formatDuration(analysable)} (${analysable} s)` +
      (s.skipped_segments.length ? `; ${s.skipped_segments.length} shorter than min_duration skipped` : ""),
    `  shifts:     ${s.shifts.length} background slide(s)` + (s.shifts.length ? `, up to [${s.shifts[s.shifts.length - 1].join(", ")}] s` : ""),
    `  livetime:   background ${formatDuration(s.livetime.background_s)} (${s.livetime.background_s} s, ${s.livetime.background_years.toFixed(3)} y), ` +
      `foreground ${formatDuration(s.livetime.foreground_s)} (${s.livetime.foreground_s} s)`,
    `  edge:       each segment also loses its last ${s.edge_s} s (whitening and resampling filter support)`,
    `  jobs:       ${s.jobs.total} (background ${s.jobs.background}, foreground ${s.jobs.foreground}, injection ${s.jobs.injection})`,
  ];
  if (s.injections) lines.push(`  injections: ${s.injections.in_analysed_time} of ${s.injections.total} in analysed time`);
  return lines.join("\n");
}

export function registerPlan(program: Command): void {
  program
    .command("plan")
    .description("dry run: analysable segments, time slides, jobs and livetime of a campaign (reads the data's metadata; no Redis)")
    .argument("<campaign>", "campaign file (YAML)")
    .option("--json", "print the plan as JSON (segments, shifts, jobs, livetime)")
    .option("--segments", "also list the analysable segments")
    .addHelpText("after", "\nExample:\n  timeslide plan campaign.yaml --json | jq .livetime")
    .action((file: string, opts: { json?: boolean; segments?: boolean }) =>
      run(async () => {
        const { plan } = await prepareCampaign(file);
        if (opts.json) {
          process.stdout.write(JSON.stringify(planSummary(plan)) + "\n");
          return;
        }
        for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
        process.stdout.write(describePlan(plan) + "\n");
        if (opts.segments) for (const seg of plan.segments) process.stdout.write(`  ${seg.start} ${seg.end}\n`);
      }),
    );
}
