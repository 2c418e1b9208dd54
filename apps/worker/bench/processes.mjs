// `timeslide` child processes of a bench: started with the bench's
// environment, their stderr tail kept, all killed at the end.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../cli/dist/main.js", import.meta.url));

/** `nodeArgs(args)`: node flags for a command (e.g. profiling a worker). */
export function benchProcesses(env, nodeArgs = () => []) {
  const children = new Set();
  const child = (args) => {
    const p = spawn(process.execPath, [...nodeArgs(args), CLI, ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err = (err + d).slice(-4000)));
    p.exited = new Promise((r) => p.once("exit", (code) => (children.delete(p), r(code))));
    p.tail = () => err;
    children.add(p);
    return p;
  };
  const killAll = () => {
    for (const p of children) p.kill("SIGKILL");
  };
  return { child, killAll };
}
