import { ColouredNoise } from "/work/main/packages/strain/dist/synth.js";
import { aLigoDesignPsd, welchPsd, DetectorStream } from "@timeslide/strain";
const fs=2048; const c = new ColouredNoise(aLigoDesignPsd, fs, 1, "x"); 
const parts=[]; for (let i=0;i<8;i++) parts.push(...c.take(65536)); const x = Float64Array.from(parts);
const psd = welchPsd(x, fs, {fftlength: 4});
for (const f of [20, 50, 100, 215, 500, 900]) console.log(f, psd.values[f*4]/aLigoDesignPsd(f));
const s = await DetectorStream.open(["/tmp/s4/syn/H-H1_SYNTH_2KHZ_R1-1187008000-256.hdf5"]); const sl = await s.read(1187008000, 1187008064);
const p2 = welchPsd(sl.data, fs, {fftlength: 4}); for (const f of [20, 50, 100, 215, 500, 900]) console.log(f, p2.values[f*4]/aLigoDesignPsd(f));
