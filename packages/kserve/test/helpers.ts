import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const TOY = fileURLToPath(new URL("./fixtures/toy-server.mjs", import.meta.url));

export interface ToyServer {
  endpoint: string;
  port: number;
  /** Only for servers started as a process. */
  proc?: ChildProcess;
  /** SIGKILL/SIGTERM for a process; an in-process server shuts down (gracefully for SIGTERM). */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts the protocol-only toy server: in this process by default (cheap),
 * or as a child process when a test must kill it like a crashed server.
 */
export async function startToyServer(args: string[] = [], opts: { process?: boolean } = {}): Promise<ToyServer> {
  if (opts.process) return startToyProcess(args);
  const { startToy } = (await import(TOY)) as {
    startToy(a: string[]): Promise<{ port: number; close(): Promise<void>; server: { forceShutdown(): void } }>;
  };
  const toy = await startToy(args);
  let closed = false;
  return {
    endpoint: `127.0.0.1:${toy.port}`,
    port: toy.port,
    kill: async (signal = "SIGKILL") => {
      if (closed) return;
      closed = true;
      if (signal === "SIGTERM") await toy.close();
      else toy.server.forceShutdown();
    },
  };
}

function startToyProcess(args: string[]): Promise<ToyServer> {
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
