import { ConfigError } from '../errors.js';
import { isFieldValue, isToken } from '../http/grammar.js';
import { compileRegex } from './filters.js';

export interface RewriteOptions {
  /** 'Name: value' */
  setHeaders: string[];
  removeHeaders: string[];
  /** 'regex:replacement' (split at the first ':'; $1.. refer to groups) */
  rewriteUrls: string[];
}

export const NO_REWRITES: RewriteOptions = { setHeaders: [], removeHeaders: [], rewriteUrls: [] };

export interface Rewriter {
  /** Returns the headers to send (a new array when anything changed). */
  headers(h: string[]): string[];
  target(t: string): string;
}

/**
 * --http-set-header, --http-remove-header and --http-rewrite-url, compiled once. Setting a
 * header replaces its first occurrence in place and removes the others, or appends it.
 */
export function buildRewriter(o: RewriteOptions): Rewriter | null {
  const remove = new Set(
    o.removeHeaders.map((n) => {
      if (!isToken(n)) throw new ConfigError(`--http-remove-header ${JSON.stringify(n)} is not a header name`);
      return n.toLowerCase();
    }),
  );
  const set = o.setHeaders.map((s) => {
    const i = s.indexOf(':');
    const name = i > 0 ? s.slice(0, i).trim() : '';
    const value = s.slice(i + 1).trim();
    // A value with CR/LF would inject fields: isFieldValue refuses every CTL but HTAB.
    if (!isToken(name) || !isFieldValue(value)) throw new ConfigError(`--http-set-header ${JSON.stringify(s)} must be 'Name: value'`);
    return { name, lower: name.toLowerCase(), value };
  });
  const urls = o.rewriteUrls.map((s) => {
    const i = s.indexOf(':');
    if (i <= 0) throw new ConfigError(`--http-rewrite-url ${JSON.stringify(s)} must be 'regex:replacement'`);
    return { re: compileRegex('http-rewrite-url', s.slice(0, i)), to: s.slice(i + 1) };
  });
  if (!remove.size && !set.length && !urls.length) return null;
  return {
    headers(h) {
      if (!remove.size && !set.length) return h;
      let out: string[] = [];
      for (let i = 0; i < h.length; i += 2) if (!remove.has(h[i].toLowerCase())) out.push(h[i], h[i + 1]);
      for (const s of set) {
        const next: string[] = [];
        let done = false;
        for (let i = 0; i < out.length; i += 2) {
          if (out[i].toLowerCase() !== s.lower) next.push(out[i], out[i + 1]);
          else if (!done) {
            next.push(out[i], s.value);
            done = true;
          }
        }
        if (!done) next.push(s.name, s.value);
        out = next;
      }
      return out;
    },
    target(t) {
      for (const u of urls) t = t.replace(u.re, u.to);
      return t;
    },
  };
}
