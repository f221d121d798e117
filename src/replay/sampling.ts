import type { HttpRequest } from '../http/types.js';
import type { RequestFlow } from './flow.js';

export type PercentageBy = 'random' | 'header' | 'remoteaddr';

export interface SamplingOptions {
  percentage: number;
  by: PercentageBy;
  header?: string;
}

/** FNV-1a over a latin1 string, as a fraction in [0, 1). */
function fraction(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995);
  h ^= h >>> 15;
  return (h >>> 0) / 0x100000000;
}

function headerValue(req: HttpRequest, lowerName: string): string {
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i].toLowerCase() === lowerName) return h[i + 1];
  return '';
}

/** Largest --percentage: ten sends of every request. */
export const MAX_PERCENTAGE = 1000;

/**
 * The --percentage step: how many times to send a request (0 = sampled out). P% means
 * floor(P/100) sends always, plus one more with probability frac(P/100): 25 sends a quarter of
 * requests once, 250 sends every request twice and half of them a third time. With
 * --percentage-by the fractional decision is a hash of the header value or the client address,
 * so the same value always gets the same count (the aws-samples semantics, extended above 100).
 * Returns a function built once at startup.
 */
export function sendCounter(opts: SamplingOptions, random: () => number = Math.random): (req: HttpRequest, flow: RequestFlow) => number {
  const p = Math.max(0, opts.percentage) / 100;
  const whole = Math.floor(p);
  const frac = p - whole;
  if (frac === 0) return () => whole;
  if (opts.by === 'header') {
    const name = (opts.header ?? '').toLowerCase();
    return (req) => whole + (fraction(headerValue(req, name)) < frac ? 1 : 0);
  }
  if (opts.by === 'remoteaddr') return (_req, flow) => whole + (fraction(flow.clientAddr) < frac ? 1 : 0);
  return () => whole + (random() < frac ? 1 : 0);
}

/** Whether a request is sent at all (--percentage up to 100). */
export function sampler(opts: SamplingOptions, random: () => number = Math.random): (req: HttpRequest, flow: RequestFlow) => boolean {
  const count = sendCounter(opts, random);
  return (req, flow) => count(req, flow) > 0;
}
