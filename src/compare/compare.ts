/**
 * Compares a destination's response with production's: status, then trailers, then body, then
 * headers (the first difference found names the result; the differing header and trailer names
 * are always listed). Trailers come before the body because gRPC puts the call's status there
 * (`grpc-status`, `grpc-message`): a failed call's body differs because it failed.
 */
import type { ResponseDigest } from '../http/response.js';
import { jsonEqual, type JsonPath } from './json.js';

export const COMPARE_RESULTS = ['match', 'status_mismatch', 'trailer_mismatch', 'header_mismatch', 'body_mismatch', 'unpaired'] as const;
export type CompareResult = (typeof COMPARE_RESULTS)[number];

/**
 * Not compared at all: framing and hop-by-hop fields (the body comparison covers the length,
 * and compression changes Content-Length without changing what the client gets).
 */
export const DEFAULT_IGNORED_HEADERS = ['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'age'];
/** Compared by presence only: their values differ between any two servers or runs. */
export const DEFAULT_PRESENCE_ONLY_HEADERS = ['server', 'set-cookie', 'etag', 'last-modified', 'expires'];

export interface CompareOptions {
  /** Lower-case names never compared. */
  ignoreHeaders: ReadonlySet<string>;
  /** Lower-case names compared by presence, not value. */
  presenceOnly: ReadonlySet<string>;
  /** JSON structural comparison, ignoring these paths; null: bodies compare by hash only. */
  jsonIgnore: JsonPath[] | null;
}

export function compareOptions(extraIgnored: string[] = [], extraPresenceOnly: string[] = [], jsonIgnore: JsonPath[] | null = null): CompareOptions {
  return {
    ignoreHeaders: new Set([...DEFAULT_IGNORED_HEADERS, ...extraIgnored.map((h) => h.toLowerCase())]),
    presenceOnly: new Set([...DEFAULT_PRESENCE_ONLY_HEADERS, ...extraPresenceOnly.map((h) => h.toLowerCase())]),
    jsonIgnore,
  };
}

export interface Comparison {
  result: Exclude<CompareResult, 'unpaired'>;
  /** Header names (lower case) whose presence or value differ, sorted. */
  headers: string[];
  /** Trailer names (HTTP/2's trailing HEADERS) that differ, sorted; absent when neither side has trailers. */
  trailers?: string[];
  /** The bodies differ (bytes, or structure when JSON comparison applies). */
  bodyDiffers: boolean;
}

export function compareResponses(prod: ResponseDigest, test: ResponseDigest, opts: CompareOptions): Comparison {
  const headers = differingHeaders(prod.headers, test.headers, opts);
  const bodyDiffers = !sameBody(prod, test, opts);
  // Neither side has trailers (every HTTP/1.x answer): the comparison reads as it always did.
  const trailers = prod.trailers || test.trailers ? differingHeaders(prod.trailers ?? [], test.trailers ?? [], opts) : null;
  const result =
    prod.status !== test.status ? 'status_mismatch' : trailers?.length ? 'trailer_mismatch' : bodyDiffers ? 'body_mismatch' : headers.length ? 'header_mismatch' : 'match';
  return trailers ? { result, headers, trailers, bodyDiffers } : { result, headers, bodyDiffers };
}

function sameBody(a: ResponseDigest, b: ResponseDigest, opts: CompareOptions): boolean {
  if (a.bodyLength === b.bodyLength && a.bodySha256 === b.bodySha256) return true;
  if (opts.jsonIgnore && a.jsonBody && b.jsonBody) return jsonEqual(a.jsonBody, b.jsonBody, opts.jsonIgnore) === true;
  return false;
}

function differingHeaders(a: string[], b: string[], opts: CompareOptions): string[] {
  const va = fieldValues(a, opts);
  const vb = fieldValues(b, opts);
  const out: string[] = [];
  for (const [name, v] of va) {
    const w = vb.get(name);
    if (w === undefined || (!opts.presenceOnly.has(name) && w !== v)) out.push(name);
  }
  for (const name of vb.keys()) if (!va.has(name)) out.push(name);
  return out.sort();
}

/** name → its values joined in order (duplicates and their order count). */
function fieldValues(h: string[], opts: CompareOptions): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i];
    if (opts.ignoreHeaders.has(n)) continue;
    const prev = m.get(n);
    m.set(n, prev === undefined ? h[i + 1] : `${prev}\n${h[i + 1]}`);
  }
  return m;
}

/**
 * Noise (Diffy's idea): a difference between production and the candidate that also shows
 * between production and a copy of production's version (the baseline) is not caused by the
 * change under test: timestamps, random ids, load-balancing, ...
 */
export function isNoise(candidate: Comparison, baseline: Comparison): boolean {
  switch (candidate.result) {
    case 'match':
      return false;
    case 'status_mismatch':
      return baseline.result === 'status_mismatch';
    case 'body_mismatch':
      return baseline.bodyDiffers;
    case 'trailer_mismatch': {
      const b = new Set(baseline.trailers ?? []);
      return (candidate.trailers ?? []).every((h) => b.has(h));
    }
    case 'header_mismatch': {
      const b = new Set(baseline.headers);
      return candidate.headers.every((h) => b.has(h));
    }
  }
}
