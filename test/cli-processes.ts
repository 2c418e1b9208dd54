// The `timeslide` command run from end-to-end tests: one-shot commands that
// must succeed or whose failure is the point, and long-running ones (serve,
// worker) kept for killing at the end.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { deleteKeys } from "@timeslide/campaign";

export const CLI = join(import.meta.dirname, "../apps/cli/dist/main.js");

/** A finished command. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** every chunk any command prints (stdout and stderr), with the command it came from: e.g. to look for secrets */
  onOutput?: (what: string, text: string) => void;
}

/** `env` may be a function: for suites that learn their environment (ports, URLs) in beforeAll. */
export function cliProcesses(dir: string, env: NodeJS.ProcessEnv | (() => NodeJS.ProcessEnv), o: CliOptions = {}) {
  const envOf = (extra: NodeJS.ProcessEnv = {}) => ({ ...(typeof env === "function" ? env() : env), ...extra });
  const children: ChildProcess[] = [];
  const tails = new WeakMap<ChildProcess, () => string>();
  const name = (args: string[]) => `timeslide ${args.join(" ")}`;

  /** Runs a command to completion (blocking), whatever its exit status. */
  const runSync = (args: string[], extraEnv?: NodeJS.ProcessEnv): Ran => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: envOf(extraEnv), cwd: dir });
    o.onOutput?.(name(args), `${r.stdout}\n${r.stderr}`);
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** Runs a command to completion without blocking the test's event loop (so in-process servers keep answering). */
  const run = (args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<Ran> =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, [CLI, ...args], { env: envOf(extraEnv), cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      c.stdout!.on("data", (d) => (stdout += d));
      c.stderr!.on("data", (d) => (stderr += d));
      c.on("close", (code) => {
        o.onOutput?.(name(args), `${stdout}\n${stderr}`);
        resolve({ code, stdout, stderr });
      });
    });
  const ok = (args: string[], r: Ran): string => {
    if (r.code !== 0) throw new Error(`${name(args)} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  /** Runs a command that must succeed; its stdout, or an error with its stderr. */
  const cli = (args: string[], extraEnv?: NodeJS.ProcessEnv): string => ok(args, runSync(args, extraEnv));
  const cliAsync = async (args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<string> => ok(args, await run(args, extraEnv));

  /** Starts a long-running command; an unexpected exit prints the end of its stderr (`stderrOf`). */
  const start = (args: string[]): ChildProcess => {
    const c = spawn(process.execPath, [CLI, ...args], { env: envOf(), cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    const what = `${name(args)} (pid ${c.pid})`;
    let err = "";
    c.stdout!.on("data", (d) => o.onOutput?.(what, String(d)));
    c.stderr!.on("data", (d) => {
      err = (err + d).slice(-20_000);
      o.onOutput?.(what, String(d));
    });
    c.on("exit", (code, signal) => {
      if (code && signal !== "SIGTERM") process.stderr.write(`timeslide ${args[0]} exited ${code}: ${err.slice(-4000)}\n`);
    });
    tails.set(c, () => err);
    children.push(c);
    return c;
  };
  /** The last 20 kB a started command wrote to stderr. */
  const stderrOf = (c: ChildProcess): string => tails.get(c)?.() ?? "";
  /** A suite's afterAll: kills what still runs, deletes the run's keys under `prefix`, removes `dir`. */
  const cleanup = async (redisUrl: string, prefix: string): Promise<void> => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    const redis = new Redis(redisUrl);
    try {
      await deleteKeys(redis, `${prefix}:*`);
    } finally {
      redis.disconnect();
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { cli, cliAsync, run, runSync, start, stderrOf, children, cleanup };
}
