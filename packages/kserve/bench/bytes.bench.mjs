// Bytes sent per inference: streaming updates through the snapshotter
// against sending every full window, for the campaign defaults
// (kernel 1.5 s, 4 Hz inference rate, 2048 Hz, batch 128, two detectors).
// Bytes are the serialized ModelInferRequest messages exactly as grpc-js
// puts them on the wire (before the 5-byte gRPC frame header). Encode
// time is left out: on this shared 2-core machine it is dominated by
// page faults of fresh multi-MB buffers and swings 100x run to run.
import { buildInferRequest, loadInferenceProtos, SequenceStream, updateLength, stateLength } from "@timeslide/kserve";

const sampleRate = 2048;
const geometry = { channels: 2, kernel: 1.5 * sampleRate, stride: sampleRate / 4, batch: 128 };
const { packageDefinition } = loadInferenceProtos();
const serialize = packageDefinition["inference.ModelInferRequest"].serialize;

const U = updateLength(geometry);
const update = new Float32Array(geometry.channels * U).map((_, i) => Math.sin(i));
const windows = new Float32Array(geometry.batch * geometry.channels * geometry.kernel).map((_, i) => Math.cos(i));

const streamReq = (start) =>
  buildInferRequest({
    model: "detector-stream",
    id: "bench.1",
    inputs: [{ name: "update", datatype: "FP32", shape: [1, geometry.channels, U], data: update }],
    sequence: { id: 123456789n, start, end: false },
  });
const fullReq = () =>
  buildInferRequest({
    model: "detector",
    id: "bench.1",
    inputs: [{ name: "whitened", datatype: "FP32", shape: [geometry.batch, geometry.channels, geometry.kernel], data: windows }],
  });

const streamBytes = serialize(streamReq(false)).length;
const fullBytes = serialize(fullReq()).length;
const perInfStream = streamBytes / geometry.batch;
const perInfFull = fullBytes / geometry.batch;

// Bytes actually counted by a SequenceStream over a carrier that only serializes.
let carried = 0;
const carrier = {
  endpoint: "local",
  infer: async (req) => {
    carried += serialize(buildInferRequest(req)).length;
    return { model_name: "", model_version: "", id: "", parameters: {}, outputs: [] };
  },
};
const seq = new SequenceStream({ carrier, model: "detector-stream", geometry });
const N = 20;
for (let i = 0; i < N; i++) await seq.send(update);

console.log(`geometry: ifos=${geometry.channels} kernel=${geometry.kernel} stride=${geometry.stride} batch=${geometry.batch} (state ${stateLength(geometry)} samples/ifo)`);
console.log(`full windows: ${fullBytes} B/request, ${perInfFull.toFixed(1)} B/inference`);
console.log(`streaming:    ${streamBytes} B/request, ${perInfStream.toFixed(1)} B/inference`);
console.log(`SequenceStream over ${N} updates: ${(carried / N).toFixed(1)} B/request`);
console.log(`bytes ratio full/streaming: ${(fullBytes / streamBytes).toFixed(3)} (target kernel/stride = ${(geometry.kernel / geometry.stride).toFixed(3)})`);
