// A pool of inference servers: endpoints from a list or from Redis (where
// servers register themselves with a TTL), least-outstanding-requests
// balancing with a per-server in-flight limit, periodic health checks,
// and sequences that fail over to another server mid-stream.
import type { Redis } from "ioredis";
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import { InferenceClient, KServeError, isServerFailure, type CallOptions, type ClientOptions, type InferRequest, type InferResult, type InferStream } from "./client.js";
import { SequenceStream, noServerError, type CarrierProvider, type SequenceCarrier, type SequenceStreamOptions } from "./sequence.js";

const endpointSchema = z
  .string()
  .trim()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, "expected host:port");

/** "host:port,host:port" (or an array) -> checked endpoint list, duplicates removed. */
export function parseEndpoints(input: string | readonly string[], where = "servers"): string[] {
  const items = (typeof input === "string" ? input.split(",") : [...input]).map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new Error(`${where}: no endpoints given (expected "host:port,host:port")`);
  const out: string[] = [];
  items.forEach((item, i) => {
    const r = endpointSchema.safeParse(item);
    if (!r.success) throw new Error(`${where}[${i}]: "${item}" is not an endpoint: expected host:port`);
    const port = Number(item.slice(item.lastIndexOf(":") + 1));
    if (port < 1 || port > 65535) throw new Error(`${where}[${i}]: port ${port} out of range 1-65535`);
    if (!out.includes(item)) out.push(item);
  });
  return out;
}

// ---- Redis registry ------------------------------------------------------
//
// One sorted set per prefix, `<prefix>:servers`, member = endpoint,
// score = expiry time in ms by the Redis server's clock (so clients and
// servers on machines with skewed clocks agree). A server refreshes its
// entry every ttl/3; discovery drops expired members.

/** Prefix used by `timeslide serve --register` and by workers unless told otherwise. */
export const DEFAULT_REGISTRY_PREFIX = "timeslide";

/** Default lease of a registration, seconds (refreshed every third of it). */
export const DEFAULT_REGISTRY_TTL_SECONDS = 15;

export function registryKey(prefix: string = DEFAULT_REGISTRY_PREFIX): string {
  return `${prefix}:servers`;
}

async function redisNowMs(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

export interface Registration {
  /** Stops refreshing and removes the entry. */
  stop(): Promise<void>;
}

/** Registers `endpoint` under `prefix` for `ttlSeconds`, refreshed until stop(). */
export async function registerServer(redis: Redis, prefix: string, endpoint: string, ttlSeconds: number): Promise<Registration> {
  parseEndpoints(endpoint, "registerServer endpoint");
  if (!(ttlSeconds > 0)) throw new RangeError(`registerServer: ttlSeconds = ${ttlSeconds} must be > 0`);
  const key = registryKey(prefix);
  const refresh = async () => {
    const now = await redisNowMs(redis);
    await redis.zadd(key, now + ttlSeconds * 1000, endpoint);
  };
  await refresh();
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    // a missed refresh only shortens the lease
    if (!stopped) inFlight = refresh().catch(() => undefined);
  }, Math.max(100, (ttlSeconds * 1000) / 3));
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      // a refresh already on the wire would put the entry back after the ZREM
      await inFlight;
      await redis.zrem(key, endpoint);
    },
  };
}

/** Endpoints currently registered under `prefix` (expired entries are removed). */
export async function discoverServers(redis: Redis, prefix: string): Promise<string[]> {
  const key = registryKey(prefix);
  const now = await redisNowMs(redis);
  await redis.zremrangebyscore(key, "-inf", now);
  const members = await redis.zrangebyscore(key, now, "+inf");
  return members.filter((m) => endpointSchema.safeParse(m).success).sort();
}

// ---- pool ----------------------------------------------------------------

/**
 * Why a live server is not ready: the models its RepositoryIndex lists as
 * not READY with their reasons (a model that failed to load keeps a Triton
 * server, and ours, from being ready), so the log and the job's error say
 * what to fix.
 */
async function notReadyReason(client: InferenceClient, probe: { deadlineMs: number }): Promise<string> {
  try {
    const failed = (await client.repositoryIndex(probe)).filter((m) => m.state !== "READY" && m.reason && m.reason !== "unloaded");
    if (failed.length)
      return `not ready: ${failed.map((m) => `model ${m.name} ${m.state}: ${m.reason.length > 300 ? `${m.reason.slice(0, 300)}...` : m.reason}`).join("; ")}`;
  } catch {
    // no index: the plain answer
  }
  return "not ready";
}

export interface ServerPoolOptions {
  /** Fixed endpoints: "host:port,..." or a list. */
  endpoints?: string | readonly string[];
  /** Servers registered in Redis under this prefix (see registerServer). */
  discovery?: { redis: Redis; prefix: string; intervalMs?: number };
  /** Most requests in flight on one server; default 32. */
  maxInFlightPerServer?: number;
  /**
   * How long a sequence waits for a healthy server when none is (the only
   * server restarting) before it fails; default 30 000 ms.
   */
  serverWaitMs?: number;
  /** Health-check period; default 2000 ms. */
  healthIntervalMs?: number;
  /** Deadline of one health probe; default 1000 ms. */
  healthTimeoutMs?: number;
  /** Also require this model to be ready on a server. */
  model?: string;
  /** Options for each server's client (endpoint excluded). */
  client?: Omit<ClientOptions, "endpoint">;
  /** A pino logger (or anything with info/warn): health changes, failovers, discovery. */
  logger?: PoolLogger;
  /**
   * Sequences this pool opens at once on one server, per model. "config"
   * (default): the server's sequence slots for the model, read from its
   * model config (`sequenceSlots`; for an ensemble, its stateful step): on
   * Triton a sequence beyond the slots waits in the server's backlog behind
   * whole sequences, with the client's deadline running (and on a shared
   * stream its answers hold up the others'), so a new sequence waits here
   * instead, before its first request is sent. A number: that many per
   * server. false: no limit.
   */
  sequenceSlots?: "config" | number | false;
  /**
   * Fleet-wide sequence slots: each sequence also holds a lease on its
   * server's slots in Redis (`slotLeaseKey`), so pools in other processes
   * (every worker of a fleet) together open no more sequences on a server
   * than its slots. A lease is refreshed while the sequence lives and expires
   * `ttlMs` (default 60 000, the demo's max_sequence_idle_microseconds: the
   * server keeps a dead client's slot that long) after its pool stops
   * refreshing it.
   */
  slotLeases?: { redis: Redis; prefix: string; ttlMs?: number };
}

/** Redis sorted set of the slot leases on one server for one model: member = lease id, score = expiry (ms, Redis clock). */
export function slotLeaseKey(prefix: string, endpoint: string, model: string): string {
  return `${prefix}:slots:${endpoint}:${model}`;
}

// Takes a lease when fewer than ARGV[1] unexpired ones are held. KEYS[1] the set; ARGV: slots, ttl ms, lease id.
const LEASE_ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
  return 1
end
return 0`;
// Extends the leases ARGV[2..] of KEYS[1] by ARGV[1] ms (only those still held).
const LEASE_REFRESH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return 1`;

/**
 * Sequence slots of a model config as Triton counts them: instances ×
 * max(1, max_batch_size) for the Direct strategy (the default), instances ×
 * max_candidate_sequences for Oldest; undefined for a model without
 * sequence batching.
 */
export function sequenceSlotsOf(config: { max_batch_size?: number | string | null; instance_group?: Array<{ count?: number | string | null }> | null; sequence_batching?: { oldest?: { max_candidate_sequences?: number | string | null } | null } | null }): number | undefined {
  const sb = config.sequence_batching;
  if (!sb) return undefined;
  const instances = Math.max(1, (config.instance_group ?? []).reduce((a, g) => a + (Number(g.count) || 1), 0));
  const perInstance = sb.oldest ? Math.max(1, Number(sb.oldest.max_candidate_sequences) || 0) : Math.max(1, Number(config.max_batch_size) || 0);
  return instances * perInstance;
}

/**
 * A server's sequence slots for `model`: its own (sequence batching) or, for
 * an ensemble, the fewest of its stateful steps'; Infinity when no step keeps
 * sequences.
 */
export async function serverSequenceSlots(client: InferenceClient, model: string, version = "", opts?: CallOptions): Promise<number> {
  const config = await client.modelConfig(model, version, opts);
  const own = sequenceSlotsOf(config);
  if (own !== undefined) return own;
  let slots = Infinity;
  for (const step of config.ensemble_scheduling?.step ?? []) {
    const sub = await client.modelConfig(step.model_name, Number(step.model_version) > 0 ? String(step.model_version) : "", opts);
    const n = sequenceSlotsOf(sub);
    if (n !== undefined) slots = Math.min(slots, n);
  }
  return slots;
}

export interface PoolLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ServerState {
  endpoint: string;
  healthy: boolean;
  inFlight: number;
  sequences: number;
  /** Requests served since the pool started (answered or failed). */
  served: number;
  lastError?: string;
}

interface Entry {
  endpoint: string;
  client: InferenceClient;
  stream?: InferStream;
  healthy: boolean;
  /** Still listed (by the endpoint list or by Redis). */
  listed: boolean;
  inFlight: number;
  served: number;
  /** Sequences currently living on this server. */
  sequences: number;
  /** FIFO of requests waiting for a slot; called with true when a slot is handed over. */
  waiters: Array<(handedOver: boolean) => void>;
  lastError?: string;
  /** carriers of the sequences living on this server (each with its own stream) */
  carriers: Set<ServerCarrier>;
  /** sequences open per model, and the server's sequence slots per model (read once) */
  modelSequences: Map<string, number>;
  slots: Map<string, number>;
}

/**
 * A sticky per-sequence carrier: its own gRPC stream to the sequence's
 * server (re-opened if it broke), ended when the sequence leaves. Not one
 * stream shared by the server's sequences: a server answers a stream's
 * requests in request order (Triton: non-decoupled models), so on a shared
 * stream a sequence whose START waits in the server's backlog for a slot
 * would hold back the answers of the sequences that hold the slots, which
 * then cannot go on and free them.
 */
class ServerCarrier implements SequenceCarrier {
  /** the Redis slot lease the sequence holds (slotLeases) */
  lease?: string;
  private stream?: InferStream;
  constructor(
    readonly endpoint: string,
    readonly model: string,
    private readonly open: () => InferStream,
  ) {}
  infer(req: InferRequest, opts?: { deadlineMs?: number; signal?: AbortSignal }): Promise<InferResult> {
    if (!this.stream || !this.stream.usable) this.stream = this.open();
    return this.stream.infer(req, opts);
  }
  /** The sequence left: half-close (answers still on their way arrive). */
  close(): void {
    const s = this.stream;
    this.stream = undefined;
    s?.end().catch(() => undefined);
  }
  cancel(): void {
    this.stream?.cancel();
    this.stream = undefined;
  }
}

export class ServerPool implements CarrierProvider {
  private readonly entries = new Map<string, Entry>();
  private readonly limit: number;
  private readonly opts: ServerPoolOptions;
  private readonly anyWaiters: Array<() => void> = [];
  /** sequences waiting for a free sequence slot (FIFO) */
  private readonly slotWaiters: Array<() => void> = [];
  /** slot leases held in Redis: key -> lease ids */
  private readonly leases = new Map<string, Set<string>>();
  private leaseTimer?: NodeJS.Timeout;
  private leaseSeq = 0;
  private readonly leaseOwner = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  private healthTimer?: NodeJS.Timeout;
  private discoveryTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(opts: ServerPoolOptions) {
    if (!opts.endpoints && !opts.discovery) throw new Error("ServerPool: give endpoints or discovery");
    this.opts = opts;
    this.limit = opts.maxInFlightPerServer ?? 32;
    if (!Number.isInteger(this.limit) || this.limit < 1) throw new RangeError(`ServerPool: maxInFlightPerServer = ${this.limit} must be a positive integer`);
    if (opts.endpoints) for (const e of parseEndpoints(opts.endpoints)) this.add(e);
  }

  /** Builds a pool, discovers servers and runs a first health check. */
  static async create(opts: ServerPoolOptions): Promise<ServerPool> {
    const pool = new ServerPool(opts);
    await pool.start();
    return pool;
  }

  async start(): Promise<void> {
    if (this.opts.discovery) await this.discover();
    await this.checkHealth();
    this.healthTimer = setInterval(() => void this.checkHealth(), this.opts.healthIntervalMs ?? 2000);
    this.healthTimer.unref();
    if (this.opts.discovery) {
      this.discoveryTimer = setInterval(() => void this.discover().catch(() => undefined), this.opts.discovery.intervalMs ?? 5000);
      this.discoveryTimer.unref();
    }
  }

  private add(endpoint: string): Entry {
    let e = this.entries.get(endpoint);
    if (!e) {
      e = {
        endpoint,
        client: new InferenceClient({ ...(this.opts.client ?? {}), endpoint }),
        healthy: false,
        listed: true,
        inFlight: 0,
        served: 0,
        sequences: 0,
        waiters: [],
        modelSequences: new Map(),
        slots: new Map(),
        carriers: new Set(),
      };
      this.entries.set(endpoint, e);
    }
    e.listed = true;
    return e;
  }

  /** Re-reads the Redis registry: new servers join, vanished ones take no new work. */
  async discover(): Promise<string[]> {
    const d = this.opts.discovery;
    if (!d) return [...this.entries.keys()];
    const found = await discoverServers(d.redis, d.prefix);
    const fixed = this.opts.endpoints ? parseEndpoints(this.opts.endpoints) : [];
    for (const e of this.entries.values()) e.listed = fixed.includes(e.endpoint) || found.includes(e.endpoint);
    for (const ep of found) {
      const isNew = !this.entries.has(ep);
      if (isNew) this.opts.logger?.info({ endpoint: ep, prefix: d.prefix }, "inference server discovered");
      const e = this.add(ep);
      if (isNew) await this.probe(e);
    }
    return found;
  }

  private async probe(e: Entry): Promise<void> {
    const probe = { deadlineMs: this.opts.healthTimeoutMs ?? 1000 };
    try {
      const serverReady = await e.client.serverReady(probe);
      const ok = serverReady && (!this.opts.model || (await e.client.modelReady(this.opts.model, "", probe)));
      this.setHealthy(e, ok, ok ? undefined : serverReady ? `model ${this.opts.model} not ready` : await notReadyReason(e.client, probe));
    } catch (err) {
      this.setHealthy(e, false, (err as Error).message);
    }
  }

  async checkHealth(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => this.probe(e)));
  }

  private setHealthy(e: Entry, healthy: boolean, reason?: string): void {
    if (healthy !== e.healthy) {
      if (healthy) this.opts.logger?.info({ endpoint: e.endpoint }, "inference server healthy");
      else this.opts.logger?.warn({ endpoint: e.endpoint, reason }, "inference server unhealthy");
    }
    e.healthy = healthy;
    e.lastError = reason;
    if (healthy) this.wakeAny();
    else {
      // Waiters of a dead server go ahead and fail fast on it.
      for (const w of e.waiters.splice(0)) w(false);
    }
  }

  /** Snapshot of every server's state. */
  servers(): ServerState[] {
    return [...this.entries.values()].map((e) => ({
      endpoint: e.endpoint,
      healthy: e.healthy,
      inFlight: e.inFlight,
      sequences: e.sequences,
      served: e.served,
      lastError: e.lastError,
    }));
  }

  private usable(e: Entry, exclude?: ReadonlySet<string>): boolean {
    return e.healthy && e.listed && !(exclude?.has(e.endpoint) ?? false);
  }

  /**
   * Least outstanding requests among usable servers. For a new sequence
   * the sequences already living on a server count first (they will keep
   * sending); ties go to the server that served fewer requests.
   */
  private pick(exclude?: ReadonlySet<string>, needCapacity = false, forSequence = false): Entry | undefined {
    const key = (e: Entry): [number, number, number] => (forSequence ? [e.sequences, e.inFlight, e.served] : [e.inFlight, e.sequences, e.served]);
    let best: Entry | undefined;
    let bestKey: [number, number, number] | undefined;
    for (const e of this.entries.values()) {
      if (!this.usable(e, exclude)) continue;
      if (needCapacity && e.inFlight >= this.limit) continue;
      const k = key(e);
      if (!bestKey || k[0] < bestKey[0] || (k[0] === bestKey[0] && (k[1] < bestKey[1] || (k[1] === bestKey[1] && k[2] < bestKey[2])))) {
        best = e;
        bestKey = k;
      }
    }
    return best;
  }

  private wakeAny(): void {
    for (const w of this.anyWaiters.splice(0)) w();
    this.slotWaiters[0]?.();
  }

  private releaseSlot(e: Entry): void {
    e.served++;
    const w = e.waiters.shift();
    if (w) w(true); // the slot passes straight to the next waiter: nobody can slip in between
    else {
      e.inFlight--;
      this.wakeAny();
    }
  }

  /** Waits for a slot on a specific server (FIFO). */
  private async slotOn(e: Entry): Promise<void> {
    if (e.inFlight < this.limit && e.waiters.length === 0) {
      e.inFlight++;
      return;
    }
    if (!e.healthy) {
      e.inFlight++;
      return; // let it fail fast rather than wait forever
    }
    const handedOver = await new Promise<boolean>((resolve) => e.waiters.push(resolve));
    if (!handedOver) e.inFlight++;
  }

  /** Waits for a slot on whichever usable server has one. */
  private async slotAny(exclude?: ReadonlySet<string>, signal?: AbortSignal, waitMs = 30_000): Promise<Entry> {
    const until = Date.now() + waitMs;
    for (;;) {
      if (this.closed) throw noServerError("pool closed");
      const e = this.pick(exclude, true);
      if (e) {
        e.inFlight++;
        return e;
      }
      const remaining = until - Date.now();
      if (remaining <= 0) {
        const states = this.servers().map((s) => `${s.endpoint} ${s.healthy ? `in flight ${s.inFlight}` : `unhealthy (${s.lastError ?? "?"})`}`);
        throw noServerError(`no server with capacity within ${waitMs} ms: ${states.join("; ") || "no servers known"}`);
      }
      if (signal?.aborted) throw new KServeError({ code: grpc.status.CANCELLED, details: "aborted while waiting for a server", endpoint: "pool" });
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(remaining, 250)); // also re-check for health changes
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.anyWaiters.push(done);
      });
    }
  }

  private markFailed(e: Entry, err: Error): void {
    this.setHealthy(e, false, err.message);
  }

  /**
   * Unary inference on the least-loaded server; on a server failure the
   * request is retried on another server (at most `retries` times).
   * Requests that belong to a sequence must go through openSequence().
   */
  async infer(req: InferRequest, opts: CallOptions & { retries?: number } = {}): Promise<InferResult> {
    if (req.sequence) throw new Error("ServerPool.infer: sequence requests need openSequence() (they are sticky to one server)");
    const tried = new Set<string>();
    const retries = opts.retries ?? 2;
    for (let attempt = 0; ; attempt++) {
      const e = await this.slotAny(tried.size < this.entries.size ? tried : undefined, opts.signal, opts.deadlineMs ?? 30_000);
      try {
        return await e.client.infer(req, opts);
      } catch (err) {
        if (!isServerFailure(err) || attempt >= retries || (err as KServeError).code === grpc.status.DEADLINE_EXCEEDED) throw err;
        tried.add(e.endpoint);
        this.markFailed(e, err as Error);
      } finally {
        this.releaseSlot(e);
      }
    }
  }

  // CarrierProvider ------------------------------------------------------

  /** The server's sequence slots for the model (read from its config once; Infinity when unlimited or unknown). */
  private async slotsOf(e: Entry, model: string, version?: string): Promise<number> {
    const mode = this.opts.sequenceSlots ?? "config";
    if (mode === false) return Infinity;
    if (typeof mode === "number") return mode;
    const key = `${model}\n${version ?? ""}`;
    const known = e.slots.get(key);
    if (known !== undefined) return known;
    try {
      const n = await serverSequenceSlots(e.client, model, version ?? "", { deadlineMs: this.opts.healthTimeoutMs ?? 5000 });
      e.slots.set(key, n);
      if (Number.isFinite(n)) this.opts.logger?.info({ endpoint: e.endpoint, model, slots: n }, "sequence slots");
      return n;
    } catch {
      return Infinity; // asked again next time
    }
  }

  /**
   * Total sequence slots for `model` over the usable servers (Infinity when
   * a server does not limit them): what a worker sizes its sequences from.
   */
  async sequenceSlots(model: string, version?: string): Promise<number> {
    const usable = [...this.entries.values()].filter((e) => this.usable(e));
    const counts = await Promise.all(usable.map((e) => this.slotsOf(e, model, version)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** The slots already known for a model on a server (sync); Infinity when unknown or unlimited. */
  private knownSlots(e: Entry, model: string, version?: string): number {
    const mode = this.opts.sequenceSlots ?? "config";
    if (mode === false) return Infinity;
    if (typeof mode === "number") return mode;
    return e.slots.get(`${model}\n${version ?? ""}`) ?? Infinity;
  }

  private reserve(e: Entry, model: string): void {
    e.sequences++;
    e.modelSequences.set(model, (e.modelSequences.get(model) ?? 0) + 1);
  }

  /**
   * Picks a usable server with a free sequence slot for `model` (pick's
   * order) and counts the sequence on it. The slot counts are fetched first;
   * the choice and the count then happen without yielding, so concurrent
   * acquires cannot both take the last slot.
   */
  private async reserveWithSlot(exclude: ReadonlySet<string> | undefined, model: string, version?: string): Promise<{ e: Entry; lease?: string } | undefined> {
    await Promise.all([...this.entries.values()].filter((e) => this.usable(e, exclude)).map((e) => this.slotsOf(e, model, version)));
    const banned = new Set<string>();
    for (const e of this.entries.values()) if ((e.modelSequences.get(model) ?? 0) >= this.knownSlots(e, model, version)) banned.add(e.endpoint);
    for (const x of exclude ?? []) banned.add(x);
    for (;;) {
      const e = this.pick(banned, false, true);
      if (!e) return undefined;
      this.reserve(e, model);
      const slots = this.knownSlots(e, model, version);
      if (!this.opts.slotLeases || !Number.isFinite(slots)) return { e };
      const lease = await this.takeLease(e.endpoint, model, slots).catch(() => "" as const); // Redis down: this pool's own limit still holds
      if (lease !== undefined) return { e, lease: lease || undefined };
      this.unreserve(e, model); // every slot of that server is leased by other processes
      banned.add(e.endpoint);
    }
  }

  private async takeLease(endpoint: string, model: string, slots: number): Promise<string | undefined> {
    const o = this.opts.slotLeases!;
    const key = slotLeaseKey(o.prefix, endpoint, model);
    const id = `${this.leaseOwner}-${++this.leaseSeq}`;
    const ttl = o.ttlMs ?? 60_000;
    const ok = await o.redis.eval(LEASE_ACQUIRE, 1, key, String(slots), String(ttl), id);
    if (Number(ok) !== 1) return undefined;
    let held = this.leases.get(key);
    if (!held) this.leases.set(key, (held = new Set()));
    held.add(id);
    if (!this.leaseTimer) {
      this.leaseTimer = setInterval(() => void this.refreshLeases().catch(() => undefined), Math.max(100, ttl / 3));
      this.leaseTimer.unref();
    }
    return `${key}\n${id}`;
  }

  private async refreshLeases(): Promise<void> {
    const o = this.opts.slotLeases;
    if (!o) return;
    const ttl = o.ttlMs ?? 60_000;
    await Promise.all([...this.leases].filter(([, ids]) => ids.size).map(([key, ids]) => o.redis.eval(LEASE_REFRESH, 1, key, String(ttl), ...ids)));
  }

  private dropLease(lease: string | undefined): void {
    const o = this.opts.slotLeases;
    if (!o || !lease) return;
    const [key, id] = lease.split("\n");
    this.leases.get(key)?.delete(id);
    void o.redis.zrem(key, id).catch(() => undefined);
  }

  private unreserve(e: Entry, model: string): void {
    if (e.sequences > 0) e.sequences--;
    const n = e.modelSequences.get(model) ?? 0;
    if (n > 1) e.modelSequences.set(model, n - 1);
    else e.modelSequences.delete(model);
  }

  async acquire(exclude: ReadonlySet<string>, sequence?: { model: string; version?: string }): Promise<SequenceCarrier> {
    if (this.closed) throw noServerError("pool closed");
    const model = sequence?.model ?? "";
    const anyUsable = () => [...this.entries.values()].some((x) => this.usable(x));
    let e: Entry | undefined;
    for (;;) {
      const got = (await this.reserveWithSlot(exclude, model, sequence?.version)) ?? (await this.reserveWithSlot(undefined, model, sequence?.version));
      if (got) {
        const entry = got.e;
        const carrier = new ServerCarrier(entry.endpoint, model, () => entry.client.openStream());
        carrier.lease = got.lease;
        entry.carriers.add(carrier);
        return carrier;
      }
      if (this.closed || !anyUsable()) break;
      // Every usable server's slots are taken (by this pool's sequences, or
      // with slotLeases by any pool's): wait (FIFO here) for one to end,
      // before sending anything (no deadline runs).
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, this.opts.slotLeases ? 250 : 1000); // also re-check health, slot counts and other processes' leases
        const waiters = this.slotWaiters;
        function done() {
          clearTimeout(t);
          const i = waiters.indexOf(done);
          if (i >= 0) waiters.splice(i, 1);
          resolve();
        }
        waiters.push(done);
      });
    }
    if (!e) {
      await this.checkHealth();
      e = this.pick(exclude, false, true) ?? this.pick(undefined, false, true);
    }
    // No healthy server at all (the only one crashed and is being restarted):
    // wait for one, probing, rather than fail the sequence (and with it the
    // job's attempt) at once; bounded, so a pool that stays dead still fails.
    const until = Date.now() + (this.opts.serverWaitMs ?? 30_000);
    if (!e && !this.closed && Date.now() < until)
      this.opts.logger?.warn({ servers: this.servers().map((s) => `${s.endpoint}: ${s.lastError ?? "unhealthy"}`), waitMs: this.opts.serverWaitMs ?? 30_000 }, "waiting for an inference server");
    while (!e && !this.closed && Date.now() < until) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 500);
        const anyWaiters = this.anyWaiters;
        function done() {
          clearTimeout(t);
          resolve();
        }
        anyWaiters.push(done);
      });
      await this.checkHealth();
      e = this.pick(exclude, false, true) ?? this.pick(undefined, false, true);
    }
    if (!e) {
      const states = this.servers().map((s) => `${s.endpoint}: ${s.lastError ?? "unhealthy"}`);
      throw noServerError(`no healthy server for the sequence (${states.join("; ") || "no servers known"})`);
    }
    // A server is healthy again: take a slot on it (or wait for one) as usual.
    return this.acquire(exclude, sequence);
  }

  failed(carrier: SequenceCarrier, err: Error): void {
    const e = this.entries.get(carrier.endpoint);
    if (e) this.markFailed(e, err);
  }

  begin(carrier: SequenceCarrier): Promise<void> {
    const e = this.entries.get(carrier.endpoint);
    return e ? this.slotOn(e) : Promise.resolve();
  }

  done(carrier: SequenceCarrier): void {
    const e = this.entries.get(carrier.endpoint);
    if (e) this.releaseSlot(e);
  }

  release(carrier: SequenceCarrier): void {
    const e = this.entries.get(carrier.endpoint);
    const model = (carrier as ServerCarrier).model;
    if (e) {
      if (model !== undefined) this.unreserve(e, model);
      else if (e.sequences > 0) e.sequences--;
    }
    const c = carrier as ServerCarrier;
    this.dropLease(c.lease);
    c.lease = undefined;
    if (e?.carriers.delete(c)) c.close();
    this.slotWaiters[0]?.(); // the oldest waiting sequence looks again
  }

  /** A snapshotter sequence on the least-loaded server, failing over to others. */
  openSequence(opts: Omit<SequenceStreamOptions, "carrier">): SequenceStream {
    const log = this.opts.logger;
    return new SequenceStream({
      ...opts,
      carrier: this,
      onFailover: (info) => {
        log?.warn({ model: opts.model, from: info.from, to: info.to, replayed: info.replayed, resent: info.resent, error: info.error.message }, "sequence failed over");
        opts.onFailover?.(info);
      },
    });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.leaseTimer);
    // leases of sequences still open end with the pool
    for (const [key, ids] of this.leases) for (const id of ids) this.dropLease(`${key}\n${id}`);
    clearInterval(this.healthTimer);
    clearInterval(this.discoveryTimer);
    this.wakeAny();
    for (const e of this.entries.values()) {
      e.stream?.cancel();
      for (const c of e.carriers) c.cancel();
      e.carriers.clear();
      e.client.close();
    }
  }
}
