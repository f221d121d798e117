import { ConfigError } from '../errors.js';

/** A compiled --compare-json-ignore path: keys, with '*' for any key or array index. */
export type JsonPath = string[];

/** 'data.items.*.updatedAt' or '$.id' → ['data', 'items', '*', 'updatedAt']. */
export function parseJsonPath(spec: string): JsonPath {
  const s = spec.startsWith('$.') ? spec.slice(2) : spec;
  const parts = s.split('.');
  if (!s || parts.some((p) => p === '')) throw new ConfigError(`--compare-json-ignore ${JSON.stringify(spec)}: expected dotted keys, e.g. data.*.updatedAt`);
  return parts;
}

/**
 * Structural equality of two JSON bodies, ignoring the given paths: object key order does not
 * matter, array order does. Returns null when either body is not valid JSON (compare bytes then).
 */
export function jsonEqual(a: Buffer, b: Buffer, ignore: JsonPath[]): boolean | null {
  let x: unknown;
  let y: unknown;
  try {
    x = JSON.parse(a.toString('utf8'));
    y = JSON.parse(b.toString('utf8'));
  } catch {
    return null;
  }
  return equal(x, y, [], ignore);
}

function ignored(path: string[], ignore: JsonPath[]): boolean {
  outer: for (const p of ignore) {
    if (p.length !== path.length) continue;
    for (let i = 0; i < p.length; i++) if (p[i] !== '*' && p[i] !== path[i]) continue outer;
    return true;
  }
  return false;
}

function equal(x: unknown, y: unknown, path: string[], ignore: JsonPath[]): boolean {
  if (path.length && ignored(path, ignore)) return true;
  if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return x === y;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  if (Array.isArray(x)) {
    const ya = y as unknown[];
    if (x.length !== ya.length) return false;
    for (let i = 0; i < x.length; i++) if (!equal(x[i], ya[i], [...path, String(i)], ignore)) return false;
    return true;
  }
  const xo = x as Record<string, unknown>;
  const yo = y as Record<string, unknown>;
  const keys = new Set([...Object.keys(xo), ...Object.keys(yo)]);
  for (const k of keys) {
    const sub = [...path, k];
    if (ignored(sub, ignore)) continue;
    if (!(k in xo) || !(k in yo)) return false;
    if (!equal(xo[k], yo[k], sub, ignore)) return false;
  }
  return true;
}
