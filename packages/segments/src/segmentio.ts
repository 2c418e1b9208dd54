import { z } from "zod";
import { Segment } from "./segment.js";

// Text: decimal numbers only (Number() would also take "", "0x10", "1_0"...),
// plus the infinities Python and gwpy write.
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INFINITY = /^([+-]?)(?:inf|infinity)$/i;
const INTEGER = /^\d+$/;

function parseNumber(word: string): number | undefined {
  if (DECIMAL.test(word)) return Number(word);
  const inf = INFINITY.exec(word);
  if (inf) return inf[1] === "-" ? -Infinity : Infinity;
  return undefined;
}

/** Shortest text that reads back as the same float64; infinities as Python writes them. */
export function formatGps(x: number): string {
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  return String(x);
}

/**
 * Parses segment text: one segment a line, either `start end` or the
 * segwizard layout `index start end duration` that ligolw/gwpy write.
 * `#` starts a comment; blank lines are skipped. Errors name
 * `source:line` and quote the offending text.
 */
export function parseSegmentText(text: string, source = "<text>"): Segment[] {
  const out: Segment[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const hash = raw.indexOf("#");
    const body = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (body === "") continue;
    const where = `${source}:${i + 1}`;
    const words = body.split(/\s+/);
    if (words.length !== 2 && words.length !== 4) {
      throw new Error(
        `${where}: expected "start end" or "index start end duration", got ${words.length} columns: ${JSON.stringify(raw)}`,
      );
    }
    const cols = words.length === 4 ? words.slice(1) : words;
    if (words.length === 4 && !INTEGER.test(words[0])) {
      throw new Error(`${where}: expected an integer index in column 1, got ${JSON.stringify(words[0])}`);
    }
    const nums = cols.map((w) => parseNumber(w));
    const bad = nums.findIndex((n) => n === undefined);
    if (bad >= 0) {
      const col = bad + (words.length === 4 ? 2 : 1);
      throw new Error(`${where}: expected a number in column ${col}, got ${JSON.stringify(cols[bad])}`);
    }
    const [start, end, duration] = nums as number[];
    if (start > end) {
      throw new Error(`${where}: start ${cols[0]} is after end ${cols[1]}: ${JSON.stringify(raw)}`);
    }
    const seg = new Segment(start, end);
    // the duration column is redundant; a mismatch means the file is not what it claims to be
    if (duration !== undefined && Math.abs(duration - seg.duration) > 1e-6 * Math.max(1, Math.abs(duration))) {
      throw new Error(
        `${where}: duration ${cols[2]} does not match end - start = ${formatGps(seg.duration)}: ${JSON.stringify(raw)}`,
      );
    }
    out.push(seg);
  }
  return out;
}

const pair = z
  .tuple([z.number(), z.number()])
  .refine(([s, e]) => s <= e, { message: "expected start <= end" });
// Either a bare list of pairs or an object carrying one (the plan JSON's "segments" field).
const segmentJson = z.union([z.array(pair), z.object({ segments: z.array(pair) }).transform((o) => o.segments)]);

/** Parses `[[start, end], ...]` or `{ "segments": [[start, end], ...] }`; errors name the source and the index. */
export function parseSegmentJSON(value: unknown, source = "<json>"): Segment[] {
  const parsed = segmentJson.safeParse(value);
  if (!parsed.success) {
    const issue = deepestIssue(parsed.error.issues);
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
    throw new Error(
      `${source}: ${path || "top level"}: ${issue.message} (expected [[start, end], ...] or {"segments": [[start, end], ...]}, numbers with start <= end)`,
    );
  }
  return parsed.data.map(([s, e]) => new Segment(s, e));
}

// A union failure reports both branches; the one that got further says more.
function deepestIssue(issues: readonly z.core.$ZodIssue[]): { path: PropertyKey[]; message: string } {
  let best: { path: PropertyKey[]; message: string } = { path: [], message: "invalid" };
  const visit = (list: readonly z.core.$ZodIssue[], prefix: PropertyKey[]) => {
    for (const issue of list) {
      const path = [...prefix, ...issue.path];
      if (issue.code === "invalid_union" && "errors" in issue) {
        for (const branch of issue.errors) visit(branch, path);
      } else if (path.length >= best.path.length) {
        best = { path, message: issue.message };
      }
    }
  };
  visit(issues, []);
  return best;
}
