import { decimate, Decimator, whiten, Whitener } from "@timeslide/strain";
const n = 100000; const x = new Float64Array(n); let s = 1; for (let i=0;i<n;i++){ s = (s*16807)%2147483647; x[i] = s/2147483647-0.5 + Math.sin(i*0.01); }
const a = decimate(x, 4);
const d = new Decimator(4); const parts=[]; let i=0; while(i<n){const c=Math.min(n-i, 1+Math.floor(Math.random()*5000)); parts.push(...d.push(x.subarray(i,i+c))); i+=c;} parts.push(...d.flush());
let md=0; for(let k=0;k<a.length;k++) md=Math.max(md,Math.abs(a[k]-parts[k])); console.log(a.length, parts.length, md, a[5000], Math.sin(20000*0.01));
const o={sampleRate:1024, psdLength:16, fduration:1, highpass:16};
const w = whiten(x, o); const wr = new Whitener(w.filter); const p2=[]; i=0; while(i<n){const c=Math.min(n-i, 1+Math.floor(Math.random()*7000)); p2.push(...wr.push(x.subarray(i,i+c))); i+=c;} p2.push(...wr.flush());
md=0; for(let k=w.valid[0];k<w.valid[1];k++) md=Math.max(md,Math.abs(w.data[k]-p2[k])); console.log(w.valid, p2.length, md);
let v=0; for(let k=w.valid[0];k<w.valid[1];k++) v+=w.data[k]**2; console.log("var", v/(w.valid[1]-w.valid[0]));
