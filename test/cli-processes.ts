// The `timeslide` command run from end-to-end tests: one-shot commands that
// must succeed, and long-running ones (serve, worker) kept for killing at the end.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";

export const CLI = join(import.meta.dirname, "../apps/cli/dist/main.js");

export function cliProcesses(dir: string, env: NodeJS.ProcessEnv) {
  const children: ChildProcess[] = [];
  /** Runs a command to completion in `dir`; its stdout, or an error with its stderr. */
  const cli = (args: string[]): string => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env, cwd: dir });
    if (r.status !== 0) throw new Error(`timeslide ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  /** Starts a long-running command; an unexpected exit prints the end of its stderr. */
  const start = (args: string[]): ChildProcess => {
    const c = spawn(process.execPath, [CLI, ...args], { env, cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    c.stderr!.on("data", (d) => (err = (err + d).slice(-4000)));
    c.on("exit", (code, signal) => {
      if (code && signal !== "SIGTERM") process.stderr.write(`timeslide ${args[0]} exited ${code}: ${err}\n`);
    });
    children.push(c);
    return c;
  };
  return { cli, start, children };
}
