export { StrainFileError } from "./errors.js";
export { readStrainFileInfo, type StrainFileInfo } from "./info.js";
export { Decimator, decimate, decimationFactor } from "./resample.js";
export { welchPsd, type Psd } from "./psd.js";
export { whiten, Whitener, inverseAsdFilter, burnInPsd, type WhitenOptions, type Whitened } from "./whiten.js";
