export { windowSamples, integrate, cluster, type Series, type Clusters } from "./postprocess.js";
export { JULIAN_YEAR_S, significance, countAtLeastSorted, farCurveSorted, thinFarCurve, type FarPoint, type Significance } from "./far.js";
export { BackgroundSummary, chooseCapacity, DEFAULT_CAPACITY, type SummaryOptions, type JobEvents } from "./summary.js";
export { StatisticHistogram, binKey, MANTISSA_BITS, type BinColumns } from "./bins.js";
export { readEvents, readEventsFile, writeEvents, readColumns, readStrings, h5, SLICE_ROWS, type EventSet, type EventsFile, type ExtraGroup, type ShapedData } from "./events-io.js";
export { writeBackground, readBackground } from "./background-io.js";
export {
  loudestPerInjection,
  injectionFars,
  farThresholds,
  foundAtThresholds,
  sensitiveVolume,
  efficiencyVsSnr,
  type InjectionInput,
  type FoundPoint,
  type VolumePoint,
  type EfficiencyBin,
} from "./injections.js";
export {
  hierarchicalRemoval,
  exclusiveSignificance,
  RemovedStatistics,
  type RemovalCandidate,
  type RemovalTake,
  type RemovedEntry,
  type HierarchicalResult,
  type HierarchicalOptions,
} from "./removal.js";
export { gridGroup, producedSamples, JobFileReader, type JobGrid, type GridRow } from "./grid.js";
