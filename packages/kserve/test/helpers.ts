import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const TOY = fileURLToPath(new URL("./fixtures/toy-server.mjs", import.meta.url));

export interface ToyServer {
  endpoint: string;
  port: number;
  proc: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts the protocol-only toy server in a child process (so a test can SIGKILL it). */
export function startToyServer(args: string[] = []): Promise<ToyServer> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [TOY, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    proc.stderr!.on("data", (d) => (stderr += d));
    const rl = createInterface({ input: proc.stdout! });
    const timer = setTimeout(() => reject(new Error(`toy server did not start: ${stderr}`)), 10_000);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`toy server exited (${code}): ${stderr}`));
    });
    rl.on("line", (line) => {
      const m = /^LISTENING (\d+)/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      resolve({
        endpoint: `127.0.0.1:${port}`,
        port,
        proc,
        kill: (signal = "SIGKILL") =>
          new Promise<void>((res) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return res();
            proc.once("exit", () => res());
            proc.kill(signal);
          }),
      });
    });
  });
}
