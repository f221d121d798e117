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
 *
 * An HTTP/2 request keeps `te: trailers` (the one TE HTTP/2 allows; gRPC requires it); the fields
 * added are lower-case as HTTP/2 requires, and X-Forwarded-Host is production's :authority (or
 * its host field). Its :authority is not a field here: see `h2Authority`.
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
  const h2 = req.h2 !== undefined;
  let xff = -1;
  let host: string | null = h2 ? (req.authority ?? null) : null;
  let hasPort = false, hasProto = false, hasXHost = false;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    const lower = name.toLowerCase();
    if ((HOP_BY_HOP.has(lower) && !(h2 && lower === 'te')) || (dropped && dropped.has(lower) && !FRAMING.has(lower))) continue;
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
  const n = h2 ? H2_NAMES : H1_NAMES;
  if (xff >= 0) out[xff] = out[xff] ? `${out[xff]}, ${flow.clientAddr}` : flow.clientAddr;
  else out.push(n.xff, flow.clientAddr);
  if (!hasPort) out.push(n.port, String(flow.serverPort));
  if (!hasProto) out.push(n.proto, 'http');
  if (!hasXHost && host !== null) out.push(n.host, host);
  return out;
}

const H1_NAMES = { xff: 'X-Forwarded-For', port: 'X-Forwarded-Port', proto: 'X-Forwarded-Proto', host: 'X-Forwarded-Host' };
const H2_NAMES = { xff: 'x-forwarded-for', port: 'x-forwarded-port', proto: 'x-forwarded-proto', host: 'x-forwarded-host' };

/**
 * The :authority to send for an HTTP/2 request: production's with keepHost, else the destination's
 * (as Host for HTTP/1.x). When production sent none (a host field instead), the host field's value
 * after forwarding, since RFC 9113 §8.3.1 wants the two equal; undefined when neither was sent
 * (node:http2 then sends the destination's).
 */
export function h2Authority(req: HttpRequest, forwarded: readonly string[], opts: ForwardOptions): string | undefined {
  if (req.authority !== undefined) return opts.keepHost ? req.authority : opts.destinationHost;
  for (let i = 0; i < forwarded.length; i += 2) if (forwarded[i].length === 4 && forwarded[i].toLowerCase() === 'host') return forwarded[i + 1];
  return undefined;
}
