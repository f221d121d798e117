/**
 * A minimal HTTP/1.1 keep-alive client for replay, over net.Socket / tls.TLSSocket.
 *
 * Why not node:http or undici: undici moves and lower-cases `Host` and `Content-Length` and refuses
 * duplicate Content-Length; node:http adds `Connection: keep-alive`, frames body-less POSTs itself
 * and costs about half our CPU per request (Agent.addRequest, ClientRequest, header checks). Here a
 * request is written as one latin1 head string built from the given fields, exactly in order and
 * case, then the body: nothing is added or reordered.
 *
 * One request in flight per connection (no pipelining). Responses are framed per RFC 9112 §6.3
 * without being kept: HEAD, 1xx, 204 and 304 have no body; Transfer-Encoding ending in chunked is
 * chunked (and wins over Content-Length); another Transfer-Encoding or no length reads until close.
 * Interim 1xx answers are skipped (100 Continue can come although Expect is stripped); 101 is an
 * error (the connection would stop being HTTP/1.x). A connection is kept only when the answer was
 * complete, length-delimited, HTTP/1.1, without `Connection: close`, and nothing followed it.
 */
import net from 'node:net';
import tls from 'node:tls';

/** A request as it goes on the wire: the header fields are sent exactly as given. */
export interface H1Request {
  method: string;
  target: string;
  /** Flat [name0, value0, name1, value1, ...]. */
  headers: string[];
  body: Buffer;
  /** Send the body as one chunk followed by `trailers` (the headers must say chunked). */
  chunked: boolean;
  trailers: string[];
  /** 0: an HTTP/1.0 request line over a connection of its own, closed after the answer. */
  minorVersion: number;
}

export interface H1Handler {
  /** The answer's bytes as they arrive (interim responses included), for digesting. */
  onBytes?(d: Buffer, start: number, end: number): void;
  /** Called exactly once: the final status, or the error (with `code`) that ended the exchange. */
  onDone(err: H1Failure | null, status: number, ex: H1Exchange): void;
}

export type H1Failure = Error & { code?: string };

export interface H1PoolOptions {
  /** Connections open at most; requests beyond wait in the pool's own queue. */
  maxConnections: number;
  /** https: accept any certificate. */
  tlsInsecure?: boolean;
  /** Largest status line + header section accepted (default 64 KiB). */
  maxHeadBytes?: number;
}

export class H1ProtocolError extends Error {
  readonly code = 'MR_BAD_RESPONSE';
}

const HEAD = 0;
const BODY = 1; // Content-Length
const CHUNK_SIZE = 2;
const CHUNK_EXT = 3;
const CHUNK_DATA = 4;
const CHUNK_CRLF = 5;
const TRAILER = 6;
const UNTIL_CLOSE = 7;
const NO_BODY = 8; // the head was the whole answer

const LF = 10;
const CR = 13;
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER = 64 * 1024;
/** Larger chunk or body lengths are taken as garbage rather than risking float arithmetic. */
const MAX_LENGTH = 2 ** 48;

/** One request/response exchange; abort() ends it (timeout, shutdown) and its connection. */
export class H1Exchange {
  /** Sent over a connection that had already carried an answer. */
  reused = false;
  /** The connection was established (TCP, and TLS when https) when the exchange ended. */
  connected = false;
  /** Answer bytes received, interim responses included. */
  responseBytes = 0;
  conn: Connection | null = null;
  done = false;
  readonly head: boolean;

  constructor(readonly req: H1Request, readonly handler: H1Handler, private readonly pool: H1Pool) {
    this.head = req.method === 'HEAD';
  }

  /** Ends the exchange with `err` (unless it already ended) and destroys its connection. */
  abort(err: H1Failure): void {
    if (this.done) return;
    const c = this.conn;
    if (c) {
      this.connected = c.connected;
      c.ex = null;
      c.destroy();
    } else this.pool.unqueue(this);
    this.finish(err, 0);
  }

  finish(err: H1Failure | null, status: number): void {
    if (this.done) return;
    this.done = true;
    this.conn = null;
    this.handler.onDone(err, status, this);
  }
}

/** One socket and the state of the answer being read on it. */
class Connection {
  readonly sock: net.Socket;
  connected = false;
  dead = false;
  /** Answers completed on this connection. */
  served = 0;
  ex: H1Exchange | null = null;

  // Reader state for the answer in progress.
  private state = HEAD;
  private headBuf: Buffer | null = null;
  private headLen = 0;
  private remaining = 0;
  private lineLen = 0;
  private sawDigit = false;
  private trailerBytes = 0;
  private status = 0;
  private keep = true;

  constructor(readonly pool: H1Pool, readonly oneShot: boolean) {
    const { url } = pool;
    const port = Number(url.port || (pool.tls ? 443 : 80));
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (pool.tls) {
      // Resuming the last session saves a full handshake per new connection (as https.Agent does).
      this.sock = tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: !pool.tlsInsecure, session: pool.tlsSession });
      this.sock.once('secureConnect', () => this.onConnect());
      this.sock.on('session', (session: Buffer) => (pool.tlsSession = session));
    } else {
      this.sock = net.connect({ host, port });
      this.sock.once('connect', () => this.onConnect());
    }
    this.sock.setNoDelay(true);
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('end', () => this.onEnd());
    this.sock.on('error', (e: H1Failure) => this.fail(e));
    this.sock.on('close', () => this.onEnd());
  }

  private onConnect(): void {
    this.connected = true;
    this.sock.setKeepAlive(true, 1000);
  }

  /** Writes the request: one head string, then the body (as one chunk when chunked). */
  send(ex: H1Exchange): void {
    this.ex = ex;
    ex.conn = this;
    ex.reused = this.served > 0;
    this.state = HEAD;
    this.headLen = 0;
    this.keep = !this.oneShot;
    const r = ex.req;
    let head = r.method + ' ' + r.target + (r.minorVersion === 0 && !r.chunked ? ' HTTP/1.0\r\n' : ' HTTP/1.1\r\n');
    const h = r.headers;
    for (let i = 0; i < h.length; i += 2) head += h[i] + ': ' + h[i + 1] + '\r\n';
    const body = r.body;
    const s = this.sock;
    if (r.chunked) {
      // Only when a rewrite removed it: the chunks below need it to mean anything.
      if (!hasField(h, 'transfer-encoding')) head += 'Transfer-Encoding: chunked\r\n';
      if (body.length) head += '\r\n' + body.length.toString(16) + '\r\n';
      else head += '\r\n';
      let tail = body.length ? '\r\n0\r\n' : '0\r\n';
      for (let i = 0; i < r.trailers.length; i += 2) tail += r.trailers[i] + ': ' + r.trailers[i + 1] + '\r\n';
      tail += '\r\n';
      if (body.length) {
        s.cork();
        s.write(head, 'latin1');
        s.write(body);
        s.write(tail, 'latin1');
        s.uncork();
      } else s.write(head + tail, 'latin1');
      return;
    }
    // A body with neither Content-Length nor chunked (a rewrite removed the field) needs a length,
    // as node:http gave it.
    if (body.length && r.minorVersion !== 0 && !hasField(h, 'content-length')) head += 'Content-Length: ' + body.length + '\r\n';
    head += '\r\n';
    if (body.length) {
      s.cork();
      s.write(head, 'latin1');
      s.write(body);
      s.uncork();
    } else s.write(head, 'latin1');
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.pool.forget(this);
    this.sock.destroy();
  }

  private fail(err: H1Failure): void {
    const ex = this.ex;
    this.ex = null;
    if (ex) ex.connected = this.connected;
    this.destroy();
    ex?.finish(err, 0);
  }

  private onEnd(): void {
    const ex = this.ex;
    if (ex && this.state === UNTIL_CLOSE) {
      this.keep = false;
      this.complete(ex, null, 0);
      return;
    }
    if (ex) this.fail(Object.assign(new Error(ex.responseBytes ? 'connection closed mid-answer' : 'connection closed before an answer'), { code: 'ECONNRESET' }));
    else this.destroy();
  }

  private onData(d: Buffer): void {
    const ex = this.ex;
    if (!ex) {
      // Bytes on an idle connection answer nothing we sent: it cannot be trusted any more.
      this.destroy();
      return;
    }
    ex.responseBytes += d.length;
    const n = d.length;
    let p = 0;
    try {
      while (p < n) {
        switch (this.state) {
          case HEAD:
            p = this.onHead(d, p, ex);
            if ((this.state as number) === NO_BODY) return this.complete(ex, d, p);
            break;
          case BODY: {
            const take = Math.min(this.remaining, n - p);
            this.remaining -= take;
            p += take;
            if (this.remaining === 0) return this.complete(ex, d, p);
            break;
          }
          case CHUNK_SIZE: p = this.onChunkSize(d, p); break;
          case CHUNK_EXT: {
            const lf = d.indexOf(LF, p);
            const end = lf < 0 ? n : lf;
            this.lineLen += end - p;
            if (this.lineLen > MAX_CHUNK_LINE) throw new H1ProtocolError('chunk extension too long');
            p = end;
            if (lf >= 0) p = this.endChunkLine(p + 1);
            break;
          }
          case CHUNK_DATA: {
            const take = Math.min(this.remaining, n - p);
            this.remaining -= take;
            p += take;
            if (this.remaining === 0) {
              this.state = CHUNK_CRLF;
              this.lineLen = 0;
            }
            break;
          }
          case CHUNK_CRLF: {
            const c = d[p++];
            if (c === LF) {
              this.state = CHUNK_SIZE;
              this.lineLen = 0;
            }
            else if (c !== CR || this.lineLen++ > 0) throw new H1ProtocolError('chunk not followed by CRLF');
            break;
          }
          case TRAILER: {
            const c = d[p++];
            if (++this.trailerBytes > MAX_TRAILER) throw new H1ProtocolError('trailer section too large');
            if (c === LF) {
              if (this.lineLen === 0) return this.complete(ex, d, p);
              this.lineLen = 0;
            } else if (c !== CR) this.lineLen++;
            break;
          }
          case UNTIL_CLOSE:
            ex.handler.onBytes?.(d, 0, n);
            return;
        }
      }
    } catch (e) {
      ex.handler.onBytes?.(d, 0, n);
      this.fail(e as H1Failure);
      return;
    }
    ex.handler.onBytes?.(d, 0, n);
  }

  /** The head of an answer: returns where its body starts; skips interim answers. */
  private onHead(d: Buffer, p: number, ex: H1Exchange): number {
    const n = d.length;
    const max = this.pool.maxHeadBytes;
    if (this.headLen === 0) {
      // Empty lines before a status line are tolerated (RFC 9112 §2.2).
      while (p < n && (d[p] === CR || d[p] === LF)) p++;
      if (p === n) return n;
      const end = headEnd(d, p, p, n);
      if (end >= 0) {
        if (end - p > max) throw new H1ProtocolError('answer head too large');
        this.parseHead(d, p, end, ex);
        return end;
      }
      if (n - p > max) throw new H1ProtocolError('answer head too large');
      this.stash(d, p, n - p);
      return n;
    }
    // The head spans reads: collect it, at most `max` bytes (doubling keeps byte-by-byte linear).
    const old = this.headLen;
    const take = Math.min(n - p, max - old);
    this.stash(d, p, take);
    const buf = this.headBuf!;
    const end = headEnd(buf, 0, Math.max(0, old - 3), this.headLen);
    if (end < 0) {
      if (this.headLen >= max) throw new H1ProtocolError('answer head too large');
      return p + take;
    }
    this.headLen = 0;
    this.parseHead(buf, 0, end, ex);
    return p + (end - old);
  }

  private stash(d: Buffer, p: number, len: number): void {
    const need = this.headLen + len;
    if (!this.headBuf || this.headBuf.length < need) {
      const nb = Buffer.allocUnsafe(Math.max(need, (this.headBuf?.length ?? 512) * 2));
      if (this.headBuf && this.headLen) this.headBuf.copy(nb, 0, 0, this.headLen);
      this.headBuf = nb;
    }
    d.copy(this.headBuf, this.headLen, p, p + len);
    this.headLen = need;
  }

  private parseHead(b: Buffer, start: number, end: number, ex: H1Exchange): void {
    // HTTP/1.x SP 3DIGIT [SP reason]
    if (
      end - start < 14 || b[start] !== 0x48 || b[start + 1] !== 0x54 || b[start + 2] !== 0x54 || b[start + 3] !== 0x50 ||
      b[start + 4] !== 0x2f || b[start + 5] !== 0x31 || b[start + 6] !== 0x2e || (b[start + 7] !== 0x30 && b[start + 7] !== 0x31) ||
      b[start + 8] !== 0x20 || !isDigit(b[start + 9]) || !isDigit(b[start + 10]) || !isDigit(b[start + 11]) ||
      (b[start + 12] !== 0x20 && b[start + 12] !== CR && b[start + 12] !== LF && b[start + 12] !== 9)
    ) throw new H1ProtocolError('not an HTTP/1.x status line');
    const minor = b[start + 7] - 0x30;
    const status = (b[start + 9] - 0x30) * 100 + (b[start + 10] - 0x30) * 10 + (b[start + 11] - 0x30);
    if (status < 100) throw new H1ProtocolError('bad status code');
    let cl = -1;
    let te = false;
    let chunked = false;
    let close = minor === 0;
    let p = b.indexOf(LF, start) + 1;
    while (p < end) {
      const lf = b.indexOf(LF, p);
      const eol = lf > p && b[lf - 1] === CR ? lf - 1 : lf;
      if (eol === p) break; // the empty line
      const colon = b.indexOf(0x3a, p);
      if (colon < 0 || colon > eol || colon === p) throw new H1ProtocolError('bad header line');
      const nameLen = colon - p;
      if (nameLen === 14 && lowerIs(b, p, 'content-length')) {
        const v = parseLength(b, colon + 1, eol);
        if (v < 0 || (cl >= 0 && cl !== v)) throw new H1ProtocolError('bad Content-Length');
        cl = v;
      } else if (nameLen === 17 && lowerIs(b, p, 'transfer-encoding')) {
        te = true;
        chunked = lastTokenIs(b, colon + 1, eol, 'chunked');
      } else if (nameLen === 10 && lowerIs(b, p, 'connection')) {
        if (hasToken(b, colon + 1, eol, 'close')) close = true;
      }
      p = lf + 1;
    }
    if (status < 200) {
      if (status === 101) throw new H1ProtocolError('101 Switching Protocols: the connection would leave HTTP/1.x');
      return; // interim: the final answer follows, state stays HEAD
    }
    this.status = status;
    if (close) this.keep = false;
    if (ex.head || status === 204 || status === 304) this.state = NO_BODY;
    else if (te) {
      if (cl >= 0) this.keep = false; // RFC 9112 §6.3: chunked wins, and the connection must close
      if (chunked) {
        this.state = CHUNK_SIZE;
        this.lineLen = 0;
        this.remaining = 0;
        this.sawDigit = false;
      } else {
        this.state = UNTIL_CLOSE;
        this.keep = false;
      }
    } else if (cl > 0) {
      this.state = BODY;
      this.remaining = cl;
    } else if (cl === 0) this.state = NO_BODY;
    else {
      this.state = UNTIL_CLOSE;
      this.keep = false;
    }
  }

  private onChunkSize(d: Buffer, p: number): number {
    const n = d.length;
    while (p < n) {
      const c = d[p];
      const v = hexValue(c);
      if (v >= 0) {
        this.remaining = this.remaining * 16 + v;
        if (this.remaining > MAX_LENGTH) throw new H1ProtocolError('chunk too large');
        this.sawDigit = true;
        p++;
        if (++this.lineLen > MAX_CHUNK_LINE) throw new H1ProtocolError('chunk size line too long');
      } else if (c === LF) return this.endChunkLine(p + 1);
      else if (c === CR || c === 0x3b || c === 0x20 || c === 9) {
        this.state = CHUNK_EXT;
        return p;
      } else throw new H1ProtocolError('bad chunk size');
    }
    return p;
  }

  private endChunkLine(p: number): number {
    if (!this.sawDigit) throw new H1ProtocolError('missing chunk size');
    this.lineLen = 0;
    this.sawDigit = false;
    if (this.remaining === 0) {
      this.state = TRAILER;
      this.trailerBytes = 0;
    } else this.state = CHUNK_DATA;
    return p;
  }

  /** A whole answer was read: bytes of `d` from `p` on belong to nothing we sent. */
  private complete(ex: H1Exchange, d: Buffer | null, p: number): void {
    if (d) ex.handler.onBytes?.(d, 0, p);
    this.ex = null;
    ex.connected = true;
    this.served++;
    const status = this.status;
    if (this.keep && !this.dead && (!d || p === d.length)) this.pool.release(this);
    else this.destroy();
    ex.finish(null, status);
  }
}

/**
 * The connections to one destination: at most `maxConnections`, most recently used first, so an
 * idle surplus is left for the server to close.
 */
export class H1Pool {
  readonly url: URL;
  readonly tls: boolean;
  readonly tlsInsecure: boolean;
  readonly maxHeadBytes: number;
  /** @internal The last TLS session a server gave, offered on the next connect. */
  tlsSession: Buffer | undefined;
  private readonly max: number;
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  /** Connections counted against the limit (one-shot HTTP/1.0 ones are not pooled). */
  private pooled = 0;
  private readonly waiting: H1Exchange[] = [];
  private destroyed = false;

  constructor(url: URL, opts: H1PoolOptions) {
    this.url = url;
    this.tls = url.protocol === 'https:';
    this.tlsInsecure = opts.tlsInsecure ?? false;
    this.max = opts.maxConnections;
    this.maxHeadBytes = opts.maxHeadBytes ?? 64 * 1024;
  }

  /** Connections open (idle or busy). */
  get open(): number {
    return this.all.size;
  }
  get idleCount(): number {
    return this.idle.length;
  }

  /** Sends `req` on an idle connection, a new one, or when one frees up. */
  request(req: H1Request, handler: H1Handler): H1Exchange {
    const ex = new H1Exchange(req, handler, this);
    if (this.destroyed) {
      ex.finish(Object.assign(new Error('pool destroyed'), { code: 'MR_SHUTDOWN' }), 0);
      return ex;
    }
    if (req.minorVersion === 0 && !req.chunked) {
      this.track(new Connection(this, true)).send(ex);
      return ex;
    }
    const c = this.idle.pop();
    if (c) {
      c.sock.ref();
      c.send(ex);
    } else if (this.pooled < this.max) {
      this.pooled++;
      this.track(new Connection(this, false)).send(ex);
    } else this.waiting.push(ex);
    return ex;
  }

  /** Closes every connection; exchanges in flight or waiting end with `err`. */
  destroy(err: H1Failure = Object.assign(new Error('pool destroyed'), { code: 'MR_SHUTDOWN' })): void {
    this.destroyed = true;
    for (const ex of this.waiting.splice(0)) ex.finish(err, 0);
    for (const c of [...this.all]) {
      if (c.ex) c.ex.abort(err);
      else c.destroy();
    }
  }

  private track(c: Connection): Connection {
    this.all.add(c);
    return c;
  }

  /** @internal A connection finished an answer and may carry the next request. */
  release(c: Connection): void {
    const ex = this.waiting.shift();
    if (ex) {
      c.send(ex);
      return;
    }
    c.sock.unref();
    this.idle.push(c);
  }

  /** @internal A connection is gone. */
  forget(c: Connection): void {
    if (!this.all.delete(c)) return;
    if (!c.oneShot) this.pooled--;
    const i = this.idle.lastIndexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.waiting.length && !this.destroyed && this.pooled < this.max) {
      // Deferred: forget() runs inside another exchange's failure path.
      queueMicrotask(() => this.admit());
    }
  }

  private admit(): void {
    while (this.waiting.length && !this.destroyed && this.pooled < this.max) {
      const ex = this.waiting.shift()!;
      this.pooled++;
      this.track(new Connection(this, false)).send(ex);
    }
  }

  /** @internal An exchange aborted while it waited for a connection. */
  unqueue(ex: H1Exchange): void {
    const i = this.waiting.indexOf(ex);
    if (i >= 0) this.waiting.splice(i, 1);
  }
}

/** End of the head that starts at `start` (not on an empty line): the index after its empty line, or -1. */
function headEnd(b: Buffer, start: number, from: number, limit: number): number {
  let p = from;
  for (;;) {
    const lf = b.indexOf(LF, p);
    if (lf < 0 || lf >= limit) return -1;
    // LF LF or LF CR LF ends the head.
    if (lf > start && (b[lf - 1] === LF || (b[lf - 1] === CR && lf - 1 > start && b[lf - 2] === LF))) return lf + 1;
    p = lf + 1;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** b[p, p + name.length) equals `name` (lower case) ignoring ASCII case. */
function lowerIs(b: Buffer, p: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if ((b[p + i] | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 9;
}

/** A Content-Length value: digits between optional whitespace; -1 otherwise. */
function parseLength(b: Buffer, p: number, end: number): number {
  while (p < end && isOws(b[p])) p++;
  while (end > p && isOws(b[end - 1])) end--;
  if (p === end) return -1;
  let v = 0;
  for (; p < end; p++) {
    if (!isDigit(b[p])) return -1;
    v = v * 10 + (b[p] - 0x30);
    if (v > MAX_LENGTH) return -1;
  }
  return v;
}

/** The last comma-separated token of the value equals `tok` (case-insensitive). */
function lastTokenIs(b: Buffer, p: number, end: number, tok: string): boolean {
  while (end > p && isOws(b[end - 1])) end--;
  const s = end - tok.length;
  if (s < p || !lowerIs(b, s, tok)) return false;
  let q = s - 1;
  while (q >= p && isOws(b[q])) q--;
  return q < p || b[q] === 0x2c;
}

/** One of the comma-separated tokens of the value equals `tok` (case-insensitive). */
function hasToken(b: Buffer, p: number, end: number, tok: string): boolean {
  while (p < end) {
    while (p < end && (isOws(b[p]) || b[p] === 0x2c)) p++;
    let e = p;
    while (e < end && b[e] !== 0x2c) e++;
    let te = e;
    while (te > p && isOws(b[te - 1])) te--;
    if (te - p === tok.length && lowerIs(b, p, tok)) return true;
    p = e + 1;
  }
  return false;
}

function hasField(h: string[], lower: string): boolean {
  for (let i = 0; i < h.length; i += 2) if (h[i].length === lower.length && h[i].toLowerCase() === lower) return true;
  return false;
}
