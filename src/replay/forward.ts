import type { HttpRequest } from '../http/types.js';
import type { RequestFlow } from './flow.js';

/** Hop-by-hop fields (RFC 9110 §7.6.1) and Expect: they describe production's connection, not the request. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'expect']);
/** Never removed because Connection names them: they frame the message. */
const FRAMING = new Set(['transfer-encoding', 'content-length', 'host']);

export interface ForwardOptions {
  /** Keep production's Host value; otherwise the destination's host replaces it, in place. */
  keepHost: boolean;
  /** host[:port] of the destination, as it goes in a Host field. */
  destinationHost: string;
}

/**
 * The fields sent to the destination: production's, in order, with their case and duplicates,
 * minus hop-by-hop ones, plus X-Forwarded-For (appended) and X-Forwarded-Port/-Proto/-Host
 * (each only if absent), as the aws-samples replayer does.
 */
export function forwardHeaders(req: HttpRequest, flow: RequestFlow, opts: ForwardOptions): string[] {
  const h = req.headers;
  let dropped: Set<string> | null = null;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i].length === 10 && h[i].toLowerCase() === 'connection') {
      for (const tok of h[i + 1].split(',')) {
        const t = tok.trim().toLowerCase();
        if (t) (dropped ??= new Set()).add(t);
      }
    }
  }
  const out: string[] = [];
  let xff = -1;
  let host: string | null = null;
  let hasPort = false, hasProto = false, hasXHost = false;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (dropped && dropped.has(lower) && !FRAMING.has(lower))) continue;
    let value = h[i + 1];
    if (lower === 'host') {
      if (host === null) host = value;
      if (!opts.keepHost) value = opts.destinationHost;
    } else if (lower === 'x-forwarded-for') xff = out.length + 1;
    else if (lower === 'x-forwarded-port') hasPort = true;
    else if (lower === 'x-forwarded-proto') hasProto = true;
    else if (lower === 'x-forwarded-host') hasXHost = true;
    out.push(name, value);
  }
  if (xff >= 0) out[xff] = out[xff] ? `${out[xff]}, ${flow.clientAddr}` : flow.clientAddr;
  else out.push('X-Forwarded-For', flow.clientAddr);
  if (!hasPort) out.push('X-Forwarded-Port', String(flow.serverPort));
  if (!hasProto) out.push('X-Forwarded-Proto', 'http');
  if (!hasXHost && host !== null) out.push('X-Forwarded-Host', host);
  return out;
}
