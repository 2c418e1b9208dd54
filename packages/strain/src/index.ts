// Public surface of @timeslide/strain.
export { StrainFileError } from "./errors.js";
export { readStrainFileInfo, type StrainFileInfo } from "./info.js";
export { DetectorStream, type StrainSlice, type DetectorStreamOptions } from "./stream.js";
export {
  openWhitenedStrain,
  segmentEdge,
  resamplingHalfSupport,
  BadSegmentError,
  type WhitenedStrain,
  type WhitenedStrainOptions,
} from "./pipeline.js";
export { Decimator, decimate, decimationFactor } from "./resample.js";
export { welchPsd, type Psd } from "./psd.js";
export { whiten, Whitener, inverseAsdFilter, type WhitenOptions, type Whitened } from "./whiten.js";
export {
  readInjections,
  readInjectionTimes,
  injectInto,
  type InjectionSet,
  type InjectTarget,
  type InjectOptions,
  type InjectReport,
} from "./injections.js";
export { synthesize, SYNTH_F_LOW, SYNTH_SNR_F_LOW, SYNTH_CHIRP_MASS_RANGE, type SynthOptions, type SynthResult } from "./synth.js";
export { aLigoDesignPsd, observingRunPsd, seismicWallPsd } from "./aligo.js";
export {
  spectralLines,
  readGlitchList,
  DEFAULT_GLITCH_RATE,
  GLITCH_FILE,
  type Glitch,
  type GlitchKind,
  type SpectralLine,
} from "./realism.js";
export { antennaResponse, timeDelayFromGeocenter, greenwichMeanSiderealTime, gpsToUnix } from "./sky.js";
export { optimalSnr, chirpStrain, chirpDuration, iscoFrequency, type ChirpParams } from "./waveform.js";
export { RealFFT, nextPow2 } from "./fft.js";
export { writeStrainFile, writeInjectionFile, type StrainFileSpec, type InjectionFileSpec } from "./write.js";
