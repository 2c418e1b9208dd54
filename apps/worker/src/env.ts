import { hostname } from "node:os";

/**
 * Settings the worker passes to its processor threads through the
 * environment (threads inherit it): the only channel BullMQ's sandbox has.
 */
export interface WorkerEnv {
  redisUrl: string;
  prefix: string;
  /** "host:port,..." or "registry"; overrides the campaign's model.servers */
  servers?: string;
  /** shifts streamed at once per job; undefined: sized from the servers' sequence slots */
  sequences?: number;
  /** jobs this worker runs at once (its processor threads share the servers' slots) */
  jobs: number;
  workerName: string;
  /** client deadline of one inference request (ms): a server that stops answering fails the request over */
  deadlineMs?: number;
  /** factorized campaigns: run the pair's declared whole model instead (comparisons, mixed campaigns) */
  wholeModel?: boolean;
  /** factorized campaigns: bytes of embeddings a job keeps in memory before spilling to its scratch file */
  embeddingMemoryBytes?: number;
}

export function readWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  return {
    redisUrl: env.REDIS_URL || "redis://localhost:6379",
    prefix: env.TIMESLIDE_PREFIX || "timeslide",
    servers: env.TIMESLIDE_SERVERS || undefined,
    sequences: Number(env.TIMESLIDE_SEQUENCES) >= 1 ? Math.floor(Number(env.TIMESLIDE_SEQUENCES)) : undefined,
    jobs: Math.max(1, Math.floor(Number(env.TIMESLIDE_JOBS)) || 1),
    workerName: env.TIMESLIDE_WORKER_NAME || `${hostname()}:${process.pid}`,
    deadlineMs: Number(env.TIMESLIDE_DEADLINE_MS) > 0 ? Number(env.TIMESLIDE_DEADLINE_MS) : undefined,
    wholeModel: env.TIMESLIDE_WHOLE_MODEL === "1",
    embeddingMemoryBytes: Number(env.TIMESLIDE_EMBEDDING_MEMORY) > 0 ? Number(env.TIMESLIDE_EMBEDDING_MEMORY) : undefined,
  };
}
