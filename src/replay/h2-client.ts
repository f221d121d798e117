/**
 * A pooled HTTP/2 client for replay (node:http2): h2c with prior knowledge, or TLS with ALPN h2.
 *
 * A few sessions per destination: a session takes streams once the server's SETTINGS said how many
 * it allows at once (SETTINGS_MAX_CONCURRENT_STREAMS, followed when it changes); when every session
 * is full another is opened, up to `maxSessions`. A session that receives GOAWAY takes no new
 * streams and leaves the pool when it closes; the next request opens a fresh one. The destination
 * above bounds what is in flight, so the pool's own wait list is bounded by it too.
 *
 * What HTTP/2 cannot carry as production's HTTP/2 client sent it: header blocks are HPACK-encoded
 * again (same fields, other bytes), and node:http2 takes the fields as an object, so repeated
 * fields go out together at the place of the first one (the order of distinct names is kept).
 * Fields node:http2 refuses or would drop (connection-specific ones, `te` other than `trailers`, a
 * name that is no lower-case token, a value with NUL/CR/LF, a repeated single-value field such as
 * content-type) are refused here before a stream opens: `h2Fields` returns why and the request is
 * dropped and counted (a throw inside node:http2's request() can take the whole session down).
 *
 * A stream the server did not process (RST_STREAM REFUSED_STREAM, or above a GOAWAY's last stream
 * id, RFC 9113 §8.7) ends with `unprocessed` set: it is safe to send again.
 */
import type http2 from 'node:http2';
import { createRequire } from 'node:module';
import net from 'node:net';
import { ShutdownError, StreamResetError } from '../errors.js';
import { BODY_LENGTH, isToken } from '../http/grammar.js';
import type { ReplyHead } from '../http/reply.js';
import type { H1Failure } from './h1-client.js';

/** RFC 9113 §7 error codes (http2.constants has them too, but see loadHttp2). */
const NGHTTP2_NO_ERROR = 0x0;
const NGHTTP2_REFUSED_STREAM = 0x7;
const NGHTTP2_CANCEL = 0x8;

let http2Module: typeof http2 | null = null;
/** node:http2 once an HTTP/2 destination connects: loading it costs ~2 MB of RSS, which HTTP/1.1-only daemons keep. */
function loadHttp2(): typeof http2 {
  return (http2Module ??= createRequire(import.meta.url)('node:http2') as typeof http2);
}

/** A request as it goes out over HTTP/2: fields as HttpRequest has them (names are lower-cased here). */
export interface H2Request {
  method: string;
  /** :path */
  target: string;
  /** Regular fields, flat [name0, value0, ...]. */
  headers: string[];
  body: Buffer;
  /** A trailing HEADERS block, flat; empty: none. */
  trailers: string[];
  /** :authority; undefined: the destination's host:port (node:http2 always sends one). */
  authority: string | undefined;
}

export interface H2Handler {
  /** The final answer's head: :status and the fields (lower-case, wire order); valid during the call. */
  onHead?(head: ReplyHead): void;
  onBody?(b: Buffer, start: number, end: number): void;
  /** The answer's trailing HEADERS block, flat. */
  onTrailers?(fields: string[]): void;
  /** Called exactly once: the final status, or the error (with `code`) that ended the exchange. */
  onDone(err: H1Failure | null, status: number, ex: H2Exchange): void;
}

export interface H2PoolOptions {
  /** Sessions open at most (each carries as many streams as its server allows). */
  maxSessions: number;
  /** https: accept any certificate. */
  tlsInsecure?: boolean;
}

/** Fields a valid HTTP/2 request cannot carry (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/** Fields node:http2 sends once only (its kSingleValueHeaders): a repeated one cannot be sent. */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'dnt', 'etag', 'expires',
  'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified', 'location',
  'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after', 'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
]);
const BAD_VALUE = /[\0\r\n]/;

type Fields = Record<string, string | string[]>;

/** A request's header block and trailers as node:http2 takes them. */
export interface H2Block {
  fields: Fields;
  trailers: Fields | null;
}

/**
 * `h` (flat) added to `out` with lower-cased names, repeats as arrays; or why HTTP/2 (or
 * node:http2) cannot carry them.
 */
function addFields(out: Fields, h: readonly string[]): string | null {
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i].toLowerCase();
    const v = h[i + 1];
    if (!isToken(name)) return `field name ${JSON.stringify(h[i])}`;
    if (CONNECTION_SPECIFIC.has(name) || (name === 'te' && v.trim().toLowerCase() !== 'trailers')) return `connection-specific field ${name}`;
    if (BAD_VALUE.test(v)) return `NUL, CR or LF in ${name}`;
    const prev = out[name];
    if (prev === undefined) out[name] = v;
    else if (SINGLE_VALUE.has(name)) return `repeated ${name}`;
    else if (typeof prev === 'string') out[name] = [prev, v];
    else prev.push(v);
  }
  return null;
}

/** The header block of `req` for node:http2 (pseudo-fields first), or why it cannot be sent. */
export function h2Fields(req: H2Request, scheme: string): H2Block | string {
  if (req.method === 'CONNECT') return 'CONNECT';
  if (!isToken(req.method)) return 'method';
  const fields: Fields = Object.create(null) as Fields;
  fields[':method'] = req.method;
  fields[':path'] = req.target;
  fields[':scheme'] = scheme;
  if (req.authority !== undefined) {
    if (req.authority === '' || BAD_VALUE.test(req.authority)) return ':authority';
    fields[':authority'] = req.authority;
  }
  const bad = addFields(fields, req.headers);
  if (bad) return bad;
  if (!req.trailers.length) return { fields, trailers: null };
  const trailers: Fields = Object.create(null) as Fields;
  const badT = addFields(trailers, req.trailers);
  return badT ? `trailer: ${badT}` : { fields, trailers };
}

/** One request/response exchange over one stream; abort() cancels the stream (not the session). */
export class H2Exchange {
  /** Sent over a session that had already carried a complete answer. */
  reused = false;
  /** The session was established (its server's SETTINGS arrived) when the exchange ended. */
  connected = false;
  /** Answer body bytes received. */
  responseBytes = 0;
  /** The server did not process the stream (refused, or above a GOAWAY's last stream id): safe to send again. */
  unprocessed = false;
  done = false;
  /** @internal */
  session: Session | null = null;
  /** @internal */
  stream: http2.ClientHttp2Stream | null = null;

  constructor(readonly req: H2Request, readonly fields: Fields, readonly trailers: Fields | null, readonly handler: H2Handler, private readonly pool: H2Pool) {}

  /** Ends the exchange with `err` (unless it already ended), cancelling its stream. */
  abort(err: H1Failure): void {
    if (this.done) return;
    const s = this.stream;
    if (s) {
      if (!s.closed && !s.destroyed) s.close(NGHTTP2_CANCEL);
    } else this.pool.unqueue(this);
    this.finish(err, 0);
  }

  finish(err: H1Failure | null, status: number): void {
    if (this.done) return;
    this.done = true;
    if (this.session) this.connected = this.session.ready;
    this.handler.onDone(err, status, this);
  }
}

/** A raw header list (flat) without its pseudo-fields; from the object form when node gave no list. */
function regularFields(raw: string[] | undefined, obj: http2.IncomingHttpHeaders): string[] {
  const out: string[] = [];
  if (raw) {
    for (let i = 0; i < raw.length; i += 2) if (raw[i][0] !== ':') out.push(raw[i], raw[i + 1]);
    return out;
  }
  for (const [k, v] of Object.entries(obj)) {
    if (k[0] === ':' || v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) out.push(k, String(x));
  }
  return out;
}

/** One HTTP/2 connection and the streams on it. */
class Session {
  readonly s: http2.ClientHttp2Session;
  /** The server's SETTINGS arrived: streams may go on it. */
  ready = false;
  /** GOAWAY received or the session is closing: no new streams. */
  draining = false;
  /** Streams open (counted until their close, also when cancelled). */
  active = 0;
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS. */
  limit = 0;
  /** Answers completed on it. */
  served = 0;
  /** From GOAWAY: streams above it were not processed. */
  lastStreamId = Infinity;
  error: H1Failure | null = null;

  constructor(private readonly pool: H2Pool) {
    const { url } = pool;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const tlsOpts = pool.tls ? { rejectUnauthorized: !pool.tlsInsecure, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['h2'] } : {};
    this.s = loadHttp2().connect(url.origin, {
      ...tlsOpts,
      settings: { enablePush: false, initialWindowSize: 1 << 20 },
      // Requests of up to the parser's 500 fields plus ours; bodies in flight on many streams.
      maxHeaderListPairs: 1024,
      maxSessionMemory: 64,
    });
    this.s.on('remoteSettings', (st) => {
      this.limit = st.maxConcurrentStreams ?? 100;
      this.ready = true;
      this.pool.admit();
    });
    this.s.on('goaway', (_code: number, last: number) => {
      this.draining = true;
      this.lastStreamId = last;
    });
    this.s.on('error', (e: H1Failure) => (this.error ??= e));
    this.s.on('close', () => {
      this.draining = true;
      this.pool.forget(this, this.error ?? Object.assign(new Error('session closed'), { code: 'ECONNRESET' }));
    });
  }

  get room(): boolean {
    return this.ready && !this.draining && !this.s.closed && !this.s.destroyed && this.active < this.limit;
  }

  /** Opens the exchange's stream and sends the request. */
  send(ex: H2Exchange): void {
    ex.session = this;
    ex.reused = this.served > 0;
    const r = ex.req;
    const hasBody = r.body.length > 0;
    let st: http2.ClientHttp2Stream;
    try {
      st = this.s.request(ex.fields, { endStream: !hasBody && !ex.trailers, waitForTrailers: ex.trailers !== null });
    } catch (e) {
      // Not expected (h2Fields refused what node:http2 refuses); nothing was sent.
      ex.finish(e as H1Failure, 0);
      return;
    }
    this.active++;
    this.s.ref();
    ex.stream = st;
    this.watch(ex, st);
    if (ex.trailers) st.once('wantTrailers', () => st.sendTrailers(ex.trailers!));
    if (hasBody) st.end(r.body);
    else if (ex.trailers) st.end();
  }

  private watch(ex: H2Exchange, st: http2.ClientHttp2Stream): void {
    let status = 0;
    let streamErr: H1Failure | null = null;
    st.on('response', (h: http2.IncomingHttpHeaders, _flags: number, raw?: string[]) => {
      status = Number(h[':status']);
      const fields = regularFields(raw, h);
      ex.handler.onHead?.({ status, minorVersion: 1, framing: BODY_LENGTH, fields: () => fields });
    });
    st.on('data', (d: Buffer) => {
      ex.responseBytes += d.length;
      ex.handler.onBody?.(d, 0, d.length);
    });
    st.on('trailers', (t: http2.IncomingHttpHeaders, _flags: number, raw?: string[]) => ex.handler.onTrailers?.(regularFields(raw, t)));
    st.on('error', (e: H1Failure) => (streamErr ??= e));
    st.on('close', () => {
      this.active--;
      const code = st.rstCode ?? NGHTTP2_NO_ERROR;
      if (code === NGHTTP2_NO_ERROR && status > 0 && !streamErr) {
        this.served++;
        ex.finish(null, status);
      } else ex.finish(this.failure(ex, st, code, streamErr), 0);
      if (this.active === 0) this.s.unref();
      this.pool.admit();
    });
  }

  /** Why a stream ended without an answer; marks it unprocessed when the server said so. */
  private failure(ex: H2Exchange, st: http2.ClientHttp2Stream, code: number, err: H1Failure | null): H1Failure {
    const id = st.id ?? Infinity;
    if (code === NGHTTP2_REFUSED_STREAM || (this.lastStreamId !== Infinity && id > this.lastStreamId)) {
      ex.unprocessed = true;
      return new StreamResetError(`stream ${id} not processed by the server (${code === NGHTTP2_REFUSED_STREAM ? 'REFUSED_STREAM' : `GOAWAY, last stream ${this.lastStreamId}`})`);
    }
    // The session failed under the stream (reset, refused connect): its cause counts.
    if (this.error) return this.error;
    if (code !== NGHTTP2_NO_ERROR) return new StreamResetError(`stream ${id} reset by the server (error code ${code})`);
    return err ?? Object.assign(new Error('stream closed before an answer'), { code: 'ECONNRESET' });
  }
}

/** The sessions to one destination. */
export class H2Pool {
  readonly url: URL;
  readonly tls: boolean;
  readonly tlsInsecure: boolean;
  private readonly max: number;
  private readonly sessions: Session[] = [];
  private readonly waiting: H2Exchange[] = [];
  private destroyed = false;

  constructor(url: URL, opts: H2PoolOptions) {
    this.url = url;
    this.tls = url.protocol === 'https:';
    this.tlsInsecure = opts.tlsInsecure ?? false;
    this.max = Math.max(1, opts.maxSessions);
  }

  /** Sessions open (connecting, ready or draining). */
  get open(): number {
    return this.sessions.length;
  }

  /** Sends `req` on a session with room, once one has room (see the header comment). */
  request(req: H2Request, fields: Fields, trailers: Fields | null, handler: H2Handler): H2Exchange {
    const ex = new H2Exchange(req, fields, trailers, handler, this);
    if (this.destroyed) {
      ex.finish(new ShutdownError('pool destroyed'), 0);
      return ex;
    }
    this.waiting.push(ex);
    this.admit();
    return ex;
  }

  /** @internal Starts waiting exchanges on sessions with room; opens a session when none has. */
  admit(): void {
    while (this.waiting.length && !this.destroyed) {
      const s = this.sessions.find((x) => x.room);
      if (!s) break;
      s.send(this.waiting.shift()!);
    }
    if (!this.waiting.length || this.destroyed) return;
    // Another session only when every one is known full: a connecting one may have room for all.
    if (this.sessions.some((x) => !x.ready && !x.draining)) return;
    if (this.sessions.filter((x) => !x.draining).length < this.max) this.sessions.push(new Session(this));
  }

  /** Closes every session; exchanges in flight or waiting end with `err`. */
  destroy(err: H1Failure = new ShutdownError('pool destroyed')): void {
    this.destroyed = true;
    for (const ex of this.waiting.splice(0)) ex.finish(err, 0);
    for (const s of this.sessions.splice(0)) s.s.destroy();
  }

  /** @internal A session closed: a failed connect fails what waited for it; otherwise a new one is opened. */
  forget(s: Session, err: H1Failure): void {
    const i = this.sessions.indexOf(s);
    if (i < 0) return;
    this.sessions.splice(i, 1);
    if (!s.ready && !this.sessions.some((x) => x.ready || !x.draining)) {
      // Never connected and nothing else to wait for: what waited is told why (connect_error).
      for (const ex of this.waiting.splice(0)) ex.finish(err, 0);
      return;
    }
    queueMicrotask(() => this.admit());
  }

  /** @internal An exchange aborted while it waited for a session. */
  unqueue(ex: H2Exchange): void {
    const i = this.waiting.indexOf(ex);
    if (i >= 0) this.waiting.splice(i, 1);
  }
}
