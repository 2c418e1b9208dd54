import { grpcTlsFromEnv, InferenceClient, type ServerPool } from "@timeslide/kserve";
import type { CampaignSpec } from "@timeslide/campaign";
import { StreamingModel, WindowModel, type DetectionModel } from "./inference.js";

/**
 * The campaign's model as the servers describe it: a streaming ensemble
 * (some step is stateful: sequence batching) is fed stride·batch new samples
 * per request; a plain model gets full windows.
 */
export async function resolveModel(pool: ServerPool, endpoint: string, spec: CampaignSpec): Promise<DetectionModel> {
  const fs = spec.data.sample_rate;
  const g = {
    kernel: Math.round(spec.inference.kernel_length * fs),
    stride: Math.round(fs / spec.inference.inference_sampling_rate),
    batch: spec.inference.batch_size,
  };
  const version = spec.model.version === "latest" ? "" : String(spec.model.version);
  const client = new InferenceClient({ endpoint, tls: grpcTlsFromEnv() }); // as the pool's clients
  try {
    const config = await client.modelConfig(spec.model.name, version, { deadlineMs: 10_000 });
    const meta = await client.modelMetadata(spec.model.name, version, { deadlineMs: 10_000 });
    const output = meta.outputs?.[0]?.name;
    let streaming = Boolean(config.sequence_batching);
    for (const step of config.ensemble_scheduling?.step ?? []) {
      const sub = await client.modelConfig(step.model_name, "", { deadlineMs: 10_000 });
      if (sub.sequence_batching) streaming = true;
    }
    const input = meta.inputs?.[0]?.name;
    return streaming
      ? new StreamingModel(pool, spec.model.name, g, { version, output })
      : new WindowModel(pool, spec.model.name, g, { version, input, output });
  } finally {
    client.close();
  }
}
