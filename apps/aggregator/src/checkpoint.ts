// The background summary carried from one aggregation to the next, so a
// partial report (and the final one) reads only the job files that came in
// since: `<out>/.aggregate/background.h5` (the summary, as background.h5
// writes it: kept loudest events, histogram, every folded job's id and
// livetime) and `state.json` (what it was built for). Background is the part
// that grows with the years asked for; foreground and injection jobs do not,
// and are read whole each time.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { BackgroundSummary, readBackground } from "@timeslide/stats";

interface State {
  v: 1;
  campaign: string;
  spec_hash: string;
  capacity: number;
  n_ifo: number;
}

export interface CheckpointKey {
  campaign: string;
  specHash: string;
  capacity: number;
  nIfo: number;
}

const dirOf = (out: string) => join(out, ".aggregate");

/**
 * The summary of the background jobs folded so far, or undefined (none, or
 * built for another spec, capacity or detector count, or holding a job that
 * is not among `completed`: then the caller starts from scratch).
 */
export async function loadCheckpoint(out: string, key: CheckpointKey, completed: ReadonlySet<string>, log: Logger): Promise<BackgroundSummary | undefined> {
  const dir = dirOf(out);
  const statePath = join(dir, "state.json");
  const summaryPath = join(dir, "background.h5");
  if (!existsSync(statePath) || !existsSync(summaryPath)) return undefined;
  try {
    const st = JSON.parse(readFileSync(statePath, "utf8")) as State;
    if (st.v !== 1 || st.campaign !== key.campaign || st.spec_hash !== key.specHash || st.capacity !== key.capacity || st.n_ifo !== key.nIfo) {
      log.info({ checkpoint: dir }, "aggregation checkpoint is for another spec or capacity: starting from scratch");
      return undefined;
    }
    const s = await readBackground(summaryPath);
    const stray = s.jobIds().find((id) => !completed.has(id));
    if (stray !== undefined) {
      log.warn({ checkpoint: dir, job_id: stray }, "aggregation checkpoint holds a job with no recorded result: starting from scratch");
      return undefined;
    }
    return s;
  } catch (e) {
    log.warn({ checkpoint: dir, err: (e as Error).message }, "aggregation checkpoint unreadable: starting from scratch");
    return undefined;
  }
}

/** Keep `background` (just written by writeBackground) as the next aggregation's starting point. */
export function saveCheckpoint(out: string, key: CheckpointKey, background: string): void {
  const dir = dirOf(out);
  mkdirSync(dir, { recursive: true });
  const tag = `${process.pid}.${Date.now()}.tmp`;
  // summary first, then the state naming it: a reader never pairs a new state with an old summary of another spec
  rmSync(join(dir, "state.json"), { force: true });
  copyFileSync(background, join(dir, `background.h5.${tag}`));
  renameSync(join(dir, `background.h5.${tag}`), join(dir, "background.h5"));
  const st: State = { v: 1, campaign: key.campaign, spec_hash: key.specHash, capacity: key.capacity, n_ifo: key.nIfo };
  writeFileSync(join(dir, `state.json.${tag}`), JSON.stringify(st) + "\n");
  renameSync(join(dir, `state.json.${tag}`), join(dir, "state.json"));
}
