import type { Command } from "commander";
import { z } from "zod";
import { KNOWN_IFOS, formatDuration, parseDuration } from "@timeslide/segments";
import { synthesize } from "@timeslide/strain";
import { run } from "../errors.js";

const posInt = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, `${what}: expected a non-negative integer`)
    .transform(Number);

const SynthFlags = z
  .object({
    out: z.string().min(1, "--out: expected a directory"),
    ifos: z
      .string()
      .transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean))
      .pipe(
        z
          .array(z.enum(KNOWN_IFOS as [string, ...string[]], { error: `--ifos: expected detectors from ${KNOWN_IFOS.join(", ")}` }))
          .min(1, "--ifos: expected at least one detector")
          .refine((a) => new Set(a).size === a.length, "--ifos: a detector is listed twice"),
      ),
    duration: z
      .string()
      .transform((s) => parseDuration(s))
      .pipe(z.number({ error: "--duration: expected a duration such as 7200, 2h or 30m" }).positive("--duration: expected > 0").finite()),
    sampleRate: posInt("--sample-rate").pipe(z.number().min(64, "--sample-rate: expected >= 64 Hz")),
    fileDuration: posInt("--file-duration").pipe(z.number().min(1, "--file-duration: expected >= 1 s")),
    gaps: posInt("--gaps"),
    injections: posInt("--injections"),
    snr: z
      .string()
      .regex(/^\d+(\.\d+)?:\d+(\.\d+)?$/, "--snr: expected LO:HI, e.g. 8:30")
      .transform((s) => s.split(":").map(Number) as [number, number])
      .refine(([a, b]) => a > 0 && b >= a, "--snr: expected 0 < LO <= HI"),
    seed: z
      .string()
      .regex(/^-?\d+$/, "--seed: expected an integer")
      .transform(Number),
    clean: z.boolean().optional(),
    lines: z.boolean(),
    glitchRate: z
      .string()
      .regex(/^\d+(\.\d+)?$/, "--glitch-rate: expected a number of glitches per minute >= 0, e.g. 0.5")
      .transform(Number),
  })
  .refine((o) => Number.isInteger(o.duration), { message: "--duration: expected whole seconds", path: ["duration"] });

export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description(
      "write a synthetic data set: GWOSC-layout strain that looks like an observing run (low-frequency wall, lines, drift, glitches, DQ gaps), an injection file and a glitch list",
    )
    .requiredOption("--out <dir>", "output directory")
    .option("--ifos <list>", "detectors, comma-separated", "H1,L1")
    .requiredOption("--duration <time>", "length of the data set (s, or with m/h/d)")
    .option("--sample-rate <hz>", "sample rate", "4096")
    .option("--file-duration <s>", "seconds per file", "4096")
    .option("--gaps <n>", "random DQ gaps per detector (NaN strain there)", "0")
    .option("--injections <n>", "number of injections (0: no injection file)", "0")
    .option("--snr <lo:hi>", "optimal network SNR range of the injections", "8:30")
    .option("--seed <s>", "random seed (same seed, same files)", "0")
    .option("--clean", "stationary Gaussian design-PSD noise, flat below 10 Hz, no lines, drift or glitches (the files earlier releases wrote)")
    .option("--glitch-rate <per-min>", "glitches per minute per detector (0: none)", "0.5")
    .option("--no-lines", "no mains, violin-mode or calibration lines")
    .addHelpText(
      "after",
      "\nExamples:\n  timeslide synth --out data --ifos H1,L1 --duration 2h --sample-rate 4096 --gaps 3 --injections 50 --snr 8:30 --seed 1\n" +
        "  timeslide synth --out data --duration 2h --glitch-rate 1 --no-lines   # more glitches, no lines\n" +
        "  timeslide synth --out data --duration 2h --clean                      # stationary Gaussian noise",
    )
    .action((opts: Record<string, string | boolean>, cmd: Command) =>
      run(async () => {
        const parsed = SynthFlags.safeParse(opts);
        if (!parsed.success) throw new Error(`synth: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
        const o = parsed.data;
        if (o.clean && (cmd.getOptionValueSource("glitchRate") === "cli" || o.lines === false))
          throw new Error("synth: --clean writes noise without lines or glitches: --glitch-rate and --no-lines do not apply");
        const res = await synthesize({ ...o, onFile: (p) => process.stderr.write(`wrote ${p}\n`) });
        const nFiles = Object.values(res.files).reduce((a, f) => a + f.length, 0);
        process.stdout.write(
          `synthetic data: ${o.ifos.join(", ")}, GPS [${res.start}, ${res.end}) (${formatDuration(res.end - res.start)}), ` +
            `${o.sampleRate} Hz, ${nFiles} file(s) in ${o.out}` +
            (res.injectionFile ? `, ${o.injections} injection(s) in ${res.injectionFile}` : "") +
            "\n",
        );
        if (res.mode === "clean") process.stdout.write("  clean: stationary Gaussian design-PSD noise (no wall, lines, drift or glitches)\n");
        else {
          const counts = Object.entries(res.glitches).map(([ifo, g]) => `${ifo} ${g.length}`).join(", ");
          process.stdout.write(
            `  realistic: low-frequency wall, ${o.lines ? "lines" : "no lines"}, drift, glitches ${o.glitchRate}/min per detector (${counts}) listed in ${res.glitchFile}\n`,
          );
        }
        for (const [ifo, gaps] of Object.entries(res.gaps)) {
          if (gaps.length) process.stdout.write(`  ${ifo} gaps: ${gaps.map(([a, b]) => `[${a}, ${b})`).join(" ")}\n`);
        }
      }),
    );
}
