/**
 * A minimal HTTP/1.1 keep-alive client for replay, over net.Socket / tls.TLSSocket.
 *
 * Why not node:http or undici: undici moves and lower-cases `Host` and `Content-Length` and refuses
 * duplicate Content-Length; node:http adds `Connection: keep-alive`, frames body-less POSTs itself
 * and costs about half our CPU per request (Agent.addRequest, ClientRequest, header checks). Here a
 * request is written as one latin1 head string built from the given fields, exactly in order and
 * case, then the body: nothing is added or reordered.
 *
 * One request in flight per connection (no pipelining). Answers are read by the one reply framer
 * (src/http/reply.ts, which says what an answer may be), the same that digests production's
 * answers for shadow testing, and handed on as head and body events, not kept. Interim 1xx
 * answers are skipped (100 Continue can come although Expect is stripped); a 101 is the answer
 * and ends the connection (it would stop being HTTP/1.x). A connection is kept only when the
 * framer calls it persistent and nothing followed the answer.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ReplyFramer, type ReplyError, type ReplyEvents, type ReplyHead } from '../http/reply.js';
import { BadResponseError, ShutdownError } from '../errors.js';

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
  /** The final answer's head (valid during the call only, see ReplyHead). */
  onHead?(head: ReplyHead): void;
  /** Its body bytes, de-chunked; `b[start..end)` is valid during the call only. */
  onBody?(b: Buffer, start: number, end: number): void;
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

  constructor(readonly req: H1Request, readonly handler: H1Handler, private readonly pool: H1Pool) {}

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

/** One socket and the answer being read on it. */
class Connection implements ReplyEvents {
  readonly sock: net.Socket;
  connected = false;
  dead = false;
  /** Answers completed on this connection. */
  served = 0;
  ex: H1Exchange | null = null;

  private readonly framer: ReplyFramer;
  // The answer in progress, as the framer's events left it.
  private status = 0;
  private keep = true;
  private ended = false;
  private error: BadResponseError | null = null;

  constructor(readonly pool: H1Pool, readonly oneShot: boolean) {
    this.framer = new ReplyFramer(this, { maxHeadBytes: pool.maxHeadBytes });
    const { host, port } = pool;
    // The listeners are shared by every socket and find their connection through CONN: no
    // closures per connection (a one-shot HTTP/1.0 request pays for a connection each).
    if (pool.tls) {
      // Resuming the last session saves a full handshake per new connection (as https.Agent does).
      this.sock = tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: !pool.tlsInsecure, session: pool.tlsSession });
      this.sock.setNoDelay(true);
      this.sock.on('secureConnect', onSockConnect);
      this.sock.on('session', onSockSession);
      this.sock.on('data', onSockData);
    } else {
      // Reads land in one buffer shared by every connection (the framer copies what it keeps):
      // no Buffer, stream push and 'data' event per read. noDelay as an option: net sets it once
      // the socket is connected; setNoDelay() now would set it twice (before connect and after).
      this.sock = net.connect({ host, port, noDelay: true, onread: plainOnread() });
      this.sock.on('connect', onSockConnect);
    }
    (this.sock as ConnSocket)[CONN] = this;
    this.sock.on('end', onSockClose);
    this.sock.on('error', onSockError);
    this.sock.on('close', onSockClose);
  }

  /** @internal The socket connected (TCP, and TLS when https). */
  onConnect(): void {
    if (this.connected) return;
    this.connected = true;
    // Probes find a dead peer under an idle pooled connection. A one-shot connection is never
    // idle (its exchange's timeout covers it), and the setsockopt calls are a connection's cost.
    if (!this.oneShot) this.sock.setKeepAlive(true, 1000);
  }

  /** Writes the request in one write: the head, then the body (as one chunk when chunked). */
  send(ex: H1Exchange): void {
    this.ex = ex;
    ex.conn = this;
    ex.reused = this.served > 0;
    this.keep = !this.oneShot;
    const r = ex.req;
    const h = r.headers;
    const body = r.body;
    let head = r.method + ' ' + r.target + (r.minorVersion === 0 && !r.chunked ? ' HTTP/1.0\r\n' : ' HTTP/1.1\r\n');
    for (let i = 0; i < h.length; i += 2) head += h[i] + ': ' + h[i + 1] + '\r\n';
    let tail = '';
    if (r.chunked) {
      // Only when a rewrite removed it: the chunks below need it to mean anything.
      if (!hasField(h, 'transfer-encoding')) head += 'Transfer-Encoding: chunked\r\n';
      head += body.length ? '\r\n' + body.length.toString(16) + '\r\n' : '\r\n';
      tail = body.length ? '\r\n0\r\n' : '0\r\n';
      for (let i = 0; i < r.trailers.length; i += 2) tail += r.trailers[i] + ': ' + r.trailers[i + 1] + '\r\n';
      tail += '\r\n';
    } else {
      // A body with neither Content-Length nor chunked (a rewrite removed the field) needs a
      // length, as node:http gave it.
      if (body.length && r.minorVersion !== 0 && !hasField(h, 'content-length')) head += 'Content-Length: ' + body.length + '\r\n';
      head += '\r\n';
    }
    if (body.length === 0) this.sock.write(head + tail, 'latin1');
    else this.writeWithBody(head, body, tail);
  }

  /**
   * head + body + tail (latin1 strings around the body) as one write. Up to COPY_MAX bytes are
   * copied into one buffer: one write costs less than a corked writev of three parts. On an
   * established plain-TCP socket that buffer is reused, unless the socket had to keep it.
   */
  private writeWithBody(head: string, body: Buffer, tail: string): void {
    const s = this.sock;
    const n = head.length + body.length + tail.length;
    if (n > COPY_MAX) {
      s.cork();
      s.write(head, 'latin1');
      s.write(body);
      if (tail) s.write(tail, 'latin1');
      s.uncork();
      return;
    }
    const reuse = this.connected && !this.pool.tls;
    const buf = reuse ? (scratch ??= Buffer.allocUnsafeSlow(COPY_MAX)) : Buffer.allocUnsafe(n);
    let o = buf.write(head, 0, 'latin1');
    o += body.copy(buf, o);
    if (tail) buf.write(tail, o, 'latin1');
    s.write(n === buf.length ? buf : buf.subarray(0, n));
    // Not all of it reached the kernel at once: the socket holds the buffer until it does.
    if (reuse && s.writableLength > 0) scratch = null;
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.pool.forget(this);
    this.sock.destroy();
  }

  /** @internal The socket failed. */
  fail(err: H1Failure): void {
    const ex = this.ex;
    this.ex = null;
    if (ex) ex.connected = this.connected;
    this.destroy();
    ex?.finish(err, 0);
  }

  /** @internal The socket ended or closed. */
  onClose(): void {
    const ex = this.ex;
    if (!ex) return this.destroy();
    // A body read until close ends here (onEnd); anything else was cut short.
    this.framer.end();
    if (this.ended) return this.complete(ex, true);
    this.fail(Object.assign(new Error(ex.responseBytes ? 'connection closed mid-answer' : 'connection closed before an answer'), { code: 'ECONNRESET' }));
  }

  /** @internal Answer bytes d[0..n); the view is valid during the call only. */
  onData(d: Buffer, n: number): void {
    const ex = this.ex;
    if (!ex) {
      // Bytes on an idle connection answer nothing we sent: it cannot be trusted any more.
      this.destroy();
      return;
    }
    ex.responseBytes += n;
    const p = this.framer.push(d, 0, n);
    if (this.error) return this.fail(this.error);
    // Bytes after the answer answer nothing we sent: the answer counts, the connection goes.
    if (this.ended) this.complete(ex, p === n);
  }

  // ---- the framer's events, for the exchange in progress ----

  requestMethod(): string | null {
    return this.ex?.req.method ?? null;
  }

  onHead(h: ReplyHead): void {
    this.status = h.status;
    this.ex?.handler.onHead?.(h);
  }

  onBody(b: Buffer, start: number, end: number): void {
    this.ex?.handler.onBody?.(b, start, end);
  }

  onEnd(persistent: boolean): void {
    this.ended = true;
    if (!persistent) this.keep = false;
  }

  onError(_reason: ReplyError, detail: string): void {
    this.error = new BadResponseError(detail);
  }

  /** A whole answer was read; `clean`: nothing followed it. */
  private complete(ex: H1Exchange, clean: boolean): void {
    this.ended = false;
    this.ex = null;
    ex.connected = true;
    this.served++;
    const status = this.status;
    if (this.keep && !this.dead && clean) this.pool.release(this);
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

  /** Where to connect, taken from the URL once (not per connection). */
  readonly host: string;
  readonly port: number;

  constructor(url: URL, opts: H1PoolOptions) {
    this.url = url;
    this.tls = url.protocol === 'https:';
    this.port = Number(url.port || (this.tls ? 443 : 80));
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
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
      ex.finish(new ShutdownError('pool destroyed'), 0);
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
  destroy(err: H1Failure = new ShutdownError('pool destroyed')): void {
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

/** Requests (head and body) up to this size are copied into one buffer and written at once. */
const COPY_MAX = 16 * 1024;
/** The buffer they are copied into, reused while sockets take their writes at once. */
let scratch: Buffer | null = null;

/** A socket and the connection it carries (set right after the socket is made). */
type ConnSocket = (net.Socket | tls.TLSSocket) & { [CONN]: Connection };
const CONN = Symbol('connection');

// The socket listeners: `this` is the socket (EventEmitter, and onread's callback, call them so).
function onSockConnect(this: ConnSocket): void {
  this[CONN].onConnect();
}
function onSockClose(this: ConnSocket): void {
  this[CONN].onClose();
}
function onSockError(this: ConnSocket, e: H1Failure): void {
  this[CONN].fail(e);
}
function onSockData(this: ConnSocket, d: Buffer): void {
  this[CONN].onData(d, d.length);
}
function onSockSession(this: ConnSocket, session: Buffer): void {
  this[CONN].pool.tlsSession = session;
}
/** onread's callback: true, go on reading. */
function onSockRead(this: ConnSocket, n: number, b: Uint8Array): boolean {
  this[CONN].onData(b as Buffer, n);
  return true;
}

let onread: { buffer: Buffer; callback: typeof onSockRead } | null = null;

/**
 * The onread option of every plain-TCP connection: one buffer they all read into (the framer
 * copies what it keeps), and the shared callback.
 */
function plainOnread(): { buffer: Buffer; callback: typeof onSockRead } {
  return (onread ??= { buffer: Buffer.allocUnsafeSlow(64 * 1024), callback: onSockRead });
}

function hasField(h: string[], lower: string): boolean {
  for (let i = 0; i < h.length; i += 2) if (h[i].length === lower.length && h[i].toLowerCase() === lower) return true;
  return false;
}
