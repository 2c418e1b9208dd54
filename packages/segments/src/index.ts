export { Segment } from "./segment.js";
export { SegmentList } from "./segmentlist.js";
export { segmentsFromDQMask, type DQMaskOptions } from "./dqmask.js";
export { formatGps } from "./segmentio.js";
export * from "./timeslides.js";
