// Simple physical signals for synthetic injections: the Newtonian-order
// (quadrupole, leading post-Newtonian order) inspiral chirp of a compact
// binary, projected on a detector with the quadrupole antenna pattern.
import { RealFFT, nextPow2 } from "./fft.js";

const MSUN_S = 4.925490947e-6; // G·M_sun / c³, seconds
const C = 299_792_458; // m/s
export const MPC_M = 3.0856775814913673e22;

export interface ChirpParams {
  chirpMass: number; // solar masses (detector frame)
  distance: number; // Mpc
  inclination: number; // rad
  coaPhase: number; // rad
  fLow: number; // Hz, where the signal starts (tapered)
}

/** Antenna pattern for a source at (theta, phi) in the detector frame, polarisation psi. */
export function antennaPattern(theta: number, phi: number, psi: number): { fplus: number; fcross: number } {
  const c = Math.cos(theta);
  const a = 0.5 * (1 + c * c) * Math.cos(2 * phi);
  const b = c * Math.sin(2 * phi);
  return {
    fplus: a * Math.cos(2 * psi) - b * Math.sin(2 * psi),
    fcross: a * Math.sin(2 * psi) + b * Math.cos(2 * psi),
  };
}

/** Time from frequency f to coalescence at Newtonian order. */
export function chirpDuration(chirpMass: number, f: number): number {
  const T = chirpMass * MSUN_S;
  return (5 / 256) * T ** (-5 / 3) * (Math.PI * f) ** (-8 / 3);
}

/** Innermost-stable-circular-orbit GW frequency for an equal-mass binary of this chirp mass. */
export function iscoFrequency(chirpMass: number): number {
  const mTotal = chirpMass * 2 ** (6 / 5);
  return 1 / (6 ** 1.5 * Math.PI * mTotal * MSUN_S);
}

/**
 * Detector strain on the grid t_k = t0 + k / sampleRate, k < n, for a chirp
 * that coalesces at tc, with antenna factors (fplus, fcross). The start
 * (near fLow) and the end (near the ISCO) are tapered over ~1.5 cycles.
 */
export function chirpStrain(
  p: ChirpParams,
  ant: { fplus: number; fcross: number },
  tc: number,
  t0: number,
  sampleRate: number,
  n: number,
): Float64Array {
  const T = p.chirpMass * MSUN_S;
  const D = p.distance * MPC_M;
  const ci = Math.cos(p.inclination);
  const ap = 0.5 * (1 + ci * ci) * ant.fplus;
  const ax = ci * ant.fcross;
  const fEnd = iscoFrequency(p.chirpMass);
  const tauStart = chirpDuration(p.chirpMass, p.fLow);
  const tauEnd = chirpDuration(p.chirpMass, fEnd);
  const phase = (tau: number) => -2 * (tau / (5 * T)) ** (5 / 8);
  const phStart = phase(tauStart);
  const phEnd = phase(tauEnd);
  const rampCycles = 1.5;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const tau = tc - (t0 + k / sampleRate);
    if (tau > tauStart || tau < tauEnd) continue;
    const f = (1 / (8 * Math.PI * T)) * ((5 * T) / tau) ** (3 / 8);
    const amp = (4 * C * T ** (5 / 3) * (Math.PI * f) ** (2 / 3)) / D;
    const ph = phase(tau);
    const cyclesIn = (ph - phStart) / (2 * Math.PI);
    const cyclesLeft = (phEnd - ph) / (2 * Math.PI);
    let w = 1;
    if (cyclesIn < rampCycles) w *= Math.sin((Math.PI / 2) * (cyclesIn / rampCycles)) ** 2;
    if (cyclesLeft < rampCycles) w *= Math.sin((Math.PI / 2) * (cyclesLeft / rampCycles)) ** 2;
    const psi = ph + p.coaPhase;
    out[k] = w * amp * (ap * Math.cos(psi) + ax * Math.sin(psi));
  }
  return out;
}

/**
 * Optimal SNR of a signal against a one-sided PSD:
 * ρ² = 4 Σ |h̃(f)|² / S(f) Δf over fLow ≤ f < Nyquist.
 */
export function optimalSnr(h: ArrayLike<number>, sampleRate: number, psd: (f: number) => number, fLow = 20): number {
  const n = nextPow2(h.length);
  const x = new Float64Array(n);
  for (let i = 0; i < h.length; i++) x[i] = h[i];
  const spec = new RealFFT(n).forward(x);
  const df = sampleRate / n;
  const dt = 1 / sampleRate;
  let s = 0;
  for (let k = 1; k < n / 2; k++) {
    const f = k * df;
    if (f < fLow) continue;
    const p2 = (spec[2 * k] ** 2 + spec[2 * k + 1] ** 2) * dt * dt;
    s += p2 / psd(f);
  }
  return Math.sqrt(4 * s * df);
}
