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

/**
 * The --percentage step. With --percentage-by the decision is a hash of the header value or the
 * client address, so the same value is always in or always out (the aws-samples semantics).
 * Returns a predicate built once at startup.
 */
export function sampler(opts: SamplingOptions, random: () => number = Math.random): (req: HttpRequest, flow: RequestFlow) => boolean {
  const p = opts.percentage / 100;
  if (p >= 1) return () => true;
  if (p <= 0) return () => false;
  if (opts.by === 'header') {
    const name = (opts.header ?? '').toLowerCase();
    return (req) => fraction(headerValue(req, name)) < p;
  }
  if (opts.by === 'remoteaddr') return (_req, flow) => fraction(flow.clientAddr) < p;
  return () => random() < p;
}
