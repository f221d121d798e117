import { ConfigError } from '../errors.js';
import { isToken } from '../http/grammar.js';
import type { HttpRequest } from '../http/types.js';

/** A `Name: regex` rule, compiled once at startup. */
export interface HeaderRule {
  name: string;
  lowerName: string;
  re: RegExp;
}

export interface FilterOptions {
  allowMethods: string[];
  disallowMethods: string[];
  allowUrls: string[];
  disallowUrls: string[];
  allowHeaders: string[];
  disallowHeaders: string[];
}

export const NO_FILTERS: FilterOptions = { allowMethods: [], disallowMethods: [], allowUrls: [], disallowUrls: [], allowHeaders: [], disallowHeaders: [] };

export function compileRegex(flag: string, src: string): RegExp {
  try {
    return new RegExp(src);
  } catch (e) {
    throw new ConfigError(`--${flag} ${JSON.stringify(src)} is not a valid regular expression: ${(e as Error).message}`);
  }
}

export function parseHeaderRule(flag: string, s: string): HeaderRule {
  const i = s.indexOf(':');
  const name = i > 0 ? s.slice(0, i).trim() : '';
  if (!isToken(name)) throw new ConfigError(`--${flag} ${JSON.stringify(s)} must be 'Name: regex'`);
  return { name, lowerName: name.toLowerCase(), re: compileRegex(flag, s.slice(i + 1).trim()) };
}

function method(flag: string, m: string): string {
  if (!isToken(m)) throw new ConfigError(`--${flag} ${JSON.stringify(m)} is not an HTTP method`);
  return m.toUpperCase();
}

function headerMatches(req: HttpRequest, r: HeaderRule): boolean {
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i].length === r.lowerName.length && h[i].toLowerCase() === r.lowerName && r.re.test(h[i + 1])) return true;
  return false;
}

/**
 * GoReplay's filter flags, compiled into one predicate. Methods compare case-insensitively;
 * URL rules match the request target (path and query); a request passes when it matches at
 * least one allow-url and no disallow-url, and every allow-header rule but no disallow-header
 * rule. Returns null when no filter is configured.
 */
export function buildFilter(o: FilterOptions): ((req: HttpRequest) => boolean) | null {
  const allowM = new Set(o.allowMethods.map((m) => method('http-allow-method', m)));
  const denyM = new Set(o.disallowMethods.map((m) => method('http-disallow-method', m)));
  const allowU = o.allowUrls.map((u) => compileRegex('http-allow-url', u));
  const denyU = o.disallowUrls.map((u) => compileRegex('http-disallow-url', u));
  const allowH = o.allowHeaders.map((h) => parseHeaderRule('http-allow-header', h));
  const denyH = o.disallowHeaders.map((h) => parseHeaderRule('http-disallow-header', h));
  if (!allowM.size && !denyM.size && !allowU.length && !denyU.length && !allowH.length && !denyH.length) return null;
  return (req) => {
    if (allowM.size || denyM.size) {
      const m = req.method.toUpperCase();
      if (allowM.size && !allowM.has(m)) return false;
      if (denyM.has(m)) return false;
    }
    if (allowU.length && !allowU.some((re) => re.test(req.target))) return false;
    if (denyU.some((re) => re.test(req.target))) return false;
    for (const r of allowH) if (!headerMatches(req, r)) return false;
    for (const r of denyH) if (headerMatches(req, r)) return false;
    return true;
  };
}
