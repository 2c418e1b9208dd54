// The reliability suite's record: each fault injected, bad input tried or
// security property checked writes what happened to test/.outcomes/, and
// `npm run reliability-table` turns the latest records into the README's table.
// Record only after the assertions that prove the outcome have passed.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const OUTCOMES_DIR = join(import.meta.dirname, ".outcomes");

export type Area = "fault" | "bad input" | "security";
/** recovered: the campaign completed as undisturbed; refused: stopped with a message before harm; lost livetime: reported as lost, exactly; protected: a security property held. */
export type Outcome = "recovered" | "refused" | "lost livetime" | "protected";

export interface OutcomeRecord {
  area: Area;
  /** What was done, in a few words: "SIGKILL of a worker mid-job, 5 times". */
  case: string;
  outcome: Outcome;
  /** The evidence: the message shown, the livetime reported lost, the retries seen. */
  detail: string;
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 80);

export function recordOutcome(r: OutcomeRecord): void {
  mkdirSync(OUTCOMES_DIR, { recursive: true });
  const detail = r.detail.replace(/\s+/g, " ").trim();
  writeFileSync(join(OUTCOMES_DIR, `${slug(r.area)}--${slug(r.case)}.json`), JSON.stringify({ ...r, detail, at: new Date().toISOString() }, null, 1) + "\n");
}

/** The soak's figures, one object: rendered as a second table. */
export function recordSoak(figures: Record<string, string | number>): void {
  mkdirSync(OUTCOMES_DIR, { recursive: true });
  writeFileSync(join(OUTCOMES_DIR, "soak.json"), JSON.stringify({ figures, at: new Date().toISOString() }, null, 1) + "\n");
}
