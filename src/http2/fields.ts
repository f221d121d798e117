/**
 * An HTTP/2 request's fields (RFC 9113 §8.3): pseudo-fields first, each once, then regular
 * fields with lower-case names and none of the connection-specific ones (§8.2.2). What a server
 * refuses as malformed (a stream error) is refused here, so no request a server would not have
 * processed is replayed.
 */
import type { HttpDropReason } from '../http/types.js';

export interface RequestHead {
  method: string;
  path: string;
  scheme: string;
  authority: string | undefined;
  /** Regular fields, flat, wire order. */
  headers: string[];
  /** content-length when sent (-1: none); §8.1.1: must match the DATA. */
  contentLength: number;
}

/** §8.2.2: fields that only mean something to HTTP/1.1 connections. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** A field name is lower-case tchar (§8.2.1: upper case is malformed). */
function validName(n: string): boolean {
  if (n.length === 0) return false;
  for (let i = 0; i < n.length; i++) {
    const c = n.charCodeAt(i);
    if (c >= 65 && c <= 90) return false;
    if (c <= 32 || c >= 127 || c === 58) return false;
  }
  return true;
}

/** §8.2.1: no NUL, CR or LF, no leading or trailing whitespace. */
function validValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(v.length - 1);
  return v.length === 0 || (first !== 32 && first !== 9 && last !== 32 && last !== 9);
}

/** Reads the decoded fields of a request's HEADERS block, or says why it is refused. */
export function requestHead(f: readonly string[], maxFields: number): RequestHead | HttpDropReason {
  const pseudo = new Map<string, string>();
  let i = 0;
  for (; i < f.length && f[i].charCodeAt(0) === 58; i += 2) {
    const n = f[i];
    if (pseudo.has(n) || !(n === ':method' || n === ':path' || n === ':scheme' || n === ':authority' || n === ':protocol')) return 'http_malformed';
    pseudo.set(n, f[i + 1]);
  }
  if ((f.length - i) / 2 > maxFields) return 'http_headers_too_large';
  const headers = f.slice(i);
  let contentLength = -1;
  for (let k = 0; k < headers.length; k += 2) {
    const n = headers[k];
    const v = headers[k + 1];
    if (!validName(n) || !validValue(v) || CONNECTION_SPECIFIC.has(n)) return 'http_malformed';
    if (n === 'te' && v !== 'trailers') return 'http_malformed';
    if (n === 'content-length') {
      if (!/^[0-9]{1,15}$/.test(v) || (contentLength >= 0 && Number(v) !== contentLength)) return 'http_malformed';
      contentLength = Number(v);
    }
  }
  const method = pseudo.get(':method');
  if (method === undefined || method === '') return 'http_malformed';
  if (method === 'CONNECT' || pseudo.has(':protocol')) return 'http_upgrade';
  const path = pseudo.get(':path');
  const scheme = pseudo.get(':scheme');
  if (path === undefined || path === '' || scheme === undefined) return 'http_malformed';
  return { method, path, scheme, authority: pseudo.get(':authority'), headers, contentLength };
}
