// The dashboard's HTTP server (fastify): the page, its snapshot as JSON, and
// server-sent events that push each refresh. Read-only: only GET routes, and
// nothing it does writes to Redis or to the result directories.
import type { ServerResponse } from "node:http";
import { isIP } from "node:net";
import type { Redis } from "ioredis";
import Fastify, { LogController } from "fastify";
import { pino, type Logger } from "pino";
import { z } from "zod";
import { LOG_REDACT, redactUrls } from "@timeslide/campaign";
import { DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REFRESH_MS } from "./defaults.js";
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from "./page.js";
import { SnapshotCollector, type Snapshot } from "./snapshot.js";


export const DashboardSettings = z.strictObject({
  port: z.number().int().min(0, "port: 0-65535").max(65535, "port: 0-65535").default(DEFAULT_PORT),
  host: z.string().trim().min(1, "host: an address to bind").default(DEFAULT_HOST),
  refreshMs: z.number().int().min(200, "refresh: at least 200 ms").default(DEFAULT_REFRESH_MS),
});
export type DashboardSettings = z.input<typeof DashboardSettings>;

export interface DashboardOptions extends DashboardSettings {
  /** a connected client (connectRedis); the caller closes it */
  redis: Redis;
  /** key prefix (TIMESLIDE_PREFIX) */
  prefix: string;
  logger?: Logger;
}

export interface RunningDashboard {
  /** http://host:port/ as bound */
  url: string;
  host: string;
  port: number;
  /** the latest snapshot (what the page shows) */
  snapshot(): Snapshot | undefined;
  /** resolves with the next snapshot taken */
  nextSnapshot(): Promise<Snapshot>;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);
const isLoopback = (host: string) => LOOPBACK_NAMES.has(host) || /^127\./.test(host);

/** Host header without its port (IPv6 literals keep their brackets). */
function hostOf(header: string | undefined): string {
  if (!header) return "";
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  return h.replace(/:\d+$/, "");
}

const SECURITY_HEADERS = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

export async function startDashboard(o: DashboardOptions): Promise<RunningDashboard> {
  const parsed = DashboardSettings.safeParse({ port: o.port, host: o.host, refreshMs: o.refreshMs });
  if (!parsed.success) throw new Error(`dashboard: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  const settings = parsed.data;
  const log = o.logger ?? pino({ name: "timeslide-dashboard", redact: LOG_REDACT });
  const collector = new SnapshotCollector(o.redis, o.prefix);
  const streams = new Set<ServerResponse>();
  let latest: Snapshot | undefined;
  let waiters: Array<(s: Snapshot) => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const refresh = async () => {
    try {
      latest = await collector.collect();
      const line = `data: ${JSON.stringify(latest)}\n\n`;
      for (const s of streams) s.write(line);
      const w = waiters;
      waiters = [];
      for (const f of w) f(latest);
    } catch (e) {
      // Redis away for a moment: the page keeps the last snapshot and says when it was taken
      log.warn({ err: redactUrls((e as Error).message) }, "refresh failed");
    }
    if (!stopped) timer = setTimeout(() => void refresh(), settings.refreshMs);
  };
  await refresh();

  const app = Fastify({ loggerInstance: log, logController: new LogController({ disableRequestLogging: true }) });
  // Bound to loopback, answer only to loopback names: a web page elsewhere
  // cannot reach it through DNS rebinding.
  const loopbackOnly = isLoopback(settings.host);
  app.addHook("onRequest", async (req, reply) => {
    if (loopbackOnly && !isLoopback(hostOf(req.headers.host))) return reply.code(421).type("text/plain").send("dashboard bound to loopback: use http://127.0.0.1\n");
    reply.headers(SECURITY_HEADERS);
  });
  app.get("/", (_req, reply) => reply.type("text/html; charset=utf-8").send(PAGE_HTML));
  app.get("/app.js", (_req, reply) => reply.type("text/javascript; charset=utf-8").send(PAGE_JS));
  app.get("/app.css", (_req, reply) => reply.type("text/css; charset=utf-8").send(PAGE_CSS));
  app.get("/api/snapshot", (_req, reply) => reply.send(latest ?? null));
  app.get("/favicon.ico", (_req, reply) => reply.code(204).send()); // browsers ask; nothing to show
  app.get("/healthz", (_req, reply) => reply.type("text/plain").send("ok\n"));
  app.get("/events", (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": "text/event-stream; charset=utf-8", Connection: "keep-alive" });
    res.write(`retry: ${settings.refreshMs}\n\n`);
    if (latest) res.write(`data: ${JSON.stringify(latest)}\n\n`);
    streams.add(res);
    req.raw.on("close", () => streams.delete(res));
  });

  try {
    await app.listen({ port: settings.port, host: settings.host });
  } catch (e) {
    stopped = true;
    clearTimeout(timer);
    collector.close();
    throw new Error(`dashboard: cannot listen on ${settings.host}:${settings.port}: ${(e as Error).message}`);
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : settings.port;
  const shown = isIP(settings.host) === 6 ? `[${settings.host}]` : settings.host;
  const url = `http://${shown}:${port}/`;
  log.info({ url, prefix: o.prefix, refresh_ms: settings.refreshMs }, "dashboard listening");
  if (!loopbackOnly) log.warn({ host: settings.host }, "dashboard reachable beyond this machine: it has no login");

  let closing: Promise<void> | undefined;
  return {
    url,
    host: settings.host,
    port,
    snapshot: () => latest,
    nextSnapshot: () => new Promise((r) => waiters.push(r)),
    close() {
      closing ??= (async () => {
        stopped = true;
        clearTimeout(timer);
        for (const s of streams) s.end(); // open event streams would hold close() for ever
        streams.clear();
        await app.close();
        collector.close();
      })();
      return closing;
    },
  };
}
