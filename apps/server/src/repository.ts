// The model repository as served: loading (ensembles after the models they
// use), reloading without dropping requests, unloading, the index, and why
// each folder that is not served is not. A model loads through the backend
// its platform names (backends/).
import { readdirSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import {
  checkModelEntry,
  configWarnings,
  folderSkipReason,
  gpuConfigNotes,
  listModelNames,
  readModel,
  repositoryLookup,
  type ModelEntry,
} from "@timeslide/model-repo";
import type { Logger } from "pino";
import { backendFor, hasBackend, type LoadContext } from "./backends/index.js";
import { InferenceError, invalid, notFound } from "./errors.js";
import type { EngineObserver } from "./metrics.js";
import { ServedModel, ServedVersion } from "./model.js";
import { SequenceBatcher } from "./sequence-batcher.js";

export interface RepositoryOptions {
  repository: string;
  /** ONNX Runtime intra-op threads per model instance. */
  threads: number;
  logger: Logger;
  observer?: EngineObserver;
  /** Runs a request on a model (ensemble steps). */
  infer: LoadContext["infer"];
}

export interface ModelIndexEntry {
  name: string;
  version: string;
  state: "READY" | "UNAVAILABLE";
  reason: string;
}

export class Repository {
  readonly models = new Map<string, ServedModel>();
  private readonly failures = new Map<string, string>();
  private readonly unloaded = new Set<string>();
  /** folders that are no model (no config.pbtxt), with the reason */
  private readonly skipped = new Map<string, string>();
  private readonly loading = new Map<string, Promise<void>>();

  constructor(private readonly opts: RepositoryOptions) {}

  /** Triton's strict readiness: no model failed to load. */
  get ready(): boolean {
    return this.failures.size === 0;
  }

  /**
   * Loads every model of the repository (ensembles after the models they
   * use). Every folder that is not served is logged with the reason (no
   * config.pbtxt, a config that does not parse, no version, graph ≠
   * config) and listed by RepositoryIndex as UNAVAILABLE with that reason.
   */
  async loadAll(): Promise<void> {
    const log = this.opts.logger;
    const names = listModelNames(this.opts.repository);
    for (const d of readdirSync(this.opts.repository, { withFileTypes: true })) {
      if (!d.isDirectory() || d.name.startsWith(".")) continue;
      const reason = folderSkipReason(this.opts.repository, d.name);
      if (reason) {
        this.skipped.set(d.name, reason);
        log.warn({ folder: d.name, reason }, "model folder skipped");
      }
    }
    const plain: string[] = [];
    const ensembles: string[] = [];
    for (const n of names) {
      try {
        (readModel(this.opts.repository, n).config.platform === "ensemble" ? ensembles : plain).push(n);
      } catch (e) {
        this.failures.set(n, (e as Error).message);
        log.error({ model: n, err: (e as Error).message }, "model folder skipped: config.pbtxt does not parse");
      }
    }
    await Promise.all(plain.map((n) => this.load(n).catch(() => {})));
    for (const n of ensembles) await this.load(n).catch(() => {});
    if (this.failures.size)
      log.warn(
        { failed: [...this.failures.keys()].sort() },
        "server not ready: some models failed to load (ServerReady stays false, as Triton's strict readiness, so workers do not use this server until they load or are unloaded); `timeslide model-repo check REPO` says why",
      );
  }

  /** (Re)loads a model: new versions come up before the old ones go, in-flight requests finish on the old. */
  load(name: string): Promise<void> {
    const prev = this.loading.get(name) ?? Promise.resolve();
    const p = prev.catch(() => {}).then(() => this.loadNow(name));
    this.loading.set(name, p);
    return p;
  }

  private async loadNow(name: string): Promise<void> {
    const log = this.opts.logger;
    let model: ServedModel;
    try {
      const entry = readModel(this.opts.repository, name);
      for (const w of configWarnings(entry.config)) log.warn({ model: name }, w);
      for (const n of gpuConfigNotes(entry.config)) log.info({ model: name }, n);
      model = await this.build(entry);
    } catch (e) {
      const msg = `failed to load '${name}': ${(e as Error).message}`;
      this.failures.set(name, msg);
      log.error({ model: name, err: (e as Error).message }, "model load failed");
      throw new InferenceError(status.INVALID_ARGUMENT, msg);
    }
    const old = this.models.get(name);
    // Sequences (slots, state, backlog) carry over so a reload does not reset running streams.
    if (model.config.sequence_batching) {
      model.batcher = old?.batcher ?? new SequenceBatcher(model, log);
      model.batcher.configure(model);
    } else old?.batcher?.close();
    this.models.set(name, model);
    this.failures.delete(name);
    this.unloaded.delete(name);
    log.info({ model: name, versions: [...model.versions.keys()], platform: model.platform }, "model loaded");
    if (old) void old.close();
  }

  private async build(entry: ModelEntry): Promise<ServedModel> {
    // The rules `timeslide model-repo check` applies (packages/model-repo):
    // config against each served version's graph, ensemble wiring.
    const checked = checkModelEntry(entry, repositoryLookup(this.opts.repository), { otherPlatform: hasBackend });
    if (checked.problems.length) throw new Error(checked.problems.join("; "));
    const config = structuredClone(checked.config ?? entry.config);
    const backend = backendFor(config);
    const model = new ServedModel(entry, config, this.opts.observer);
    const ctx = {
      model,
      threads: this.opts.threads,
      notLoaded: (n: string) => (this.models.has(n) ? undefined : (this.failures.get(n) ?? "")),
      infer: this.opts.infer,
    };
    try {
      for (const version of checked.served) {
        const instances = await backend.load({ ...ctx, version });
        model.versions.set(version, new ServedVersion(version, instances, model));
      }
    } catch (e) {
      await model.close();
      throw e;
    }
    return model;
  }

  async unload(name: string): Promise<void> {
    const m = this.models.get(name);
    if (!m) {
      if (!listModelNames(this.opts.repository).includes(name)) throw invalid(`failed to unload '${name}', no version is available`);
      // A model whose load failed, unloaded: no longer counted against readiness.
      if (this.failures.delete(name)) this.unloaded.add(name);
      return;
    }
    this.models.delete(name);
    this.unloaded.add(name);
    m.batcher?.close();
    this.opts.logger.info({ model: name }, "model unloaded");
    await m.close();
  }

  index(readyOnly: boolean): ModelIndexEntry[] {
    let names: string[] = [];
    try {
      names = listModelNames(this.opts.repository);
    } catch {
      names = [];
    }
    const all = new Set([...names, ...this.models.keys(), ...this.skipped.keys()]);
    const out: ModelIndexEntry[] = [];
    for (const name of [...all].sort()) {
      const m = this.models.get(name);
      if (m) {
        for (const v of [...m.versions.keys()].sort((a, b) => a - b)) out.push({ name, version: String(v), state: "READY", reason: "" });
      } else if (!readyOnly) {
        const reason = this.failures.get(name) ?? this.skipped.get(name) ?? (this.unloaded.has(name) ? "unloaded" : "not loaded");
        out.push({ name, version: "", state: "UNAVAILABLE", reason });
      }
    }
    return out;
  }

  /** The loaded model, or Triton's error for one that is not. */
  model(name: string): ServedModel {
    const m = this.models.get(name);
    if (!m) {
      if (this.failures.has(name) || this.unloaded.has(name)) {
        throw new InferenceError(status.UNAVAILABLE, `Request for unknown model: '${name}' is not ready (${this.failures.get(name) ?? "unloaded"})`);
      }
      const skipped = this.skipped.get(name);
      if (skipped) throw new InferenceError(status.NOT_FOUND, `Request for unknown model: '${name}' is not found (${skipped})`);
      throw notFound(name);
    }
    return m;
  }

  async close(): Promise<void> {
    const all = [...this.models.values()];
    for (const m of all) m.batcher?.close();
    this.models.clear();
    await Promise.all(all.map((m) => m.close()));
  }
}
