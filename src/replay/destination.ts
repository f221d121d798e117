import { ConfigError, DestinationDownError, InvalidTargetError, ReplayTimeoutError, ShutdownError } from '../errors.js';
import { parseBytes, parseDuration } from '../units.js';
import type { ReplyHead } from '../http/reply.js';
import { AnswerDigest, type ResponseDigest } from '../http/response.js';
import { H1Pool, type H1Failure, type H1Handler, type H1Request } from './h1-client.js';
import { H2Pool, h2Fields, type H2Block, type H2Handler } from './h2-client.js';
import type { DropReason, ReplayObserver } from './outcome.js';

/** A request ready to send: production's, with forwarded headers already applied. */
export interface OutgoingRequest extends H1Request {
  /** Shadow testing: told the digest of the answer, or why there is none (exactly once). */
  answer?: AnswerSink;
  /** Set when the request came over HTTP/2: `headers` are its regular fields, `target` its :path. */
  h2?: { authority: string | undefined; block?: H2Block };
}

/** How a destination is spoken to: HTTP/1.1, HTTP/2 with prior knowledge (cleartext), HTTP/2 over TLS (ALPN h2). */
export const DESTINATION_PROTOCOLS = ['http/1.1', 'h2c', 'h2'] as const;
export type DestinationProtocol = (typeof DESTINATION_PROTOCOLS)[number];

/** The `protocol` label of a destination's metrics: h1 or h2 (h2c is HTTP/2 too). */
export function protocolLabel(p: DestinationProtocol | undefined): 'h1' | 'h2' {
  return p === 'h2c' || p === 'h2' ? 'h2' : 'h1';
}

/** Receives a destination's answer, digested as production's are (src/http/response.ts). */
export interface AnswerSink {
  readonly snippetBytes: number;
  readonly captureJsonBytes: number;
  answered(d: ResponseDigest): void;
  /** Not answered: the drop reason (queue_full, timeout, …). */
  failed(reason: string): void;
}

export interface DestinationOptions {
  maxConcurrency: number;
  maxQueue: number;
  /** Bytes of request bodies that may wait in the queue. */
  maxQueueBytes: number;
  timeoutMs: number;
  /** https destinations: accept any certificate (test environments often self-sign). */
  tlsInsecure?: boolean;
  /** Per destination only (`?protocol=`); default http/1.1. */
  protocol?: DestinationProtocol;
}

/**
 * A destination URL may override the global limits in its query string, so a slow test
 * environment can be given a small queue without starving the others:
 * `http://10.0.0.37:8080?max-queue=500&timeout=2s&max-concurrency=16&max-queue-bytes=64MiB`. The
 * protocol is chosen there too: `?protocol=h2c` (http://) or `?protocol=h2` (https://).
 * Throws ConfigError for anything else in the URL than scheme, host, port and these.
 */
export function parseDestination(spec: string, defaults: DestinationOptions): { url: URL; opts: DestinationOptions } {
  let u: URL;
  try {
    u = new URL(spec);
  } catch {
    throw new ConfigError(`--destination ${JSON.stringify(spec)} is not a URL; expected e.g. http://10.0.0.37:8080`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`--destination ${spec}: must be http:// or https:// (got ${u.protocol})`);
  if (u.pathname !== '/' || u.hash) throw new ConfigError(`--destination ${spec}: give only scheme, host and port (and limits as ?max-queue=...); the request target is production's`);
  if (u.username || u.password) throw new ConfigError(`--destination ${spec}: credentials in the URL are not supported`);
  const opts = { ...defaults };
  for (const [k, v] of u.searchParams) {
    const flag = `destination ${u.origin} ${k}`;
    if (k === 'max-concurrency' || k === 'max-queue') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < (k === 'max-queue' ? 0 : 1) || n > 10_000_000) throw new ConfigError(`--${flag} must be a whole number, got ${JSON.stringify(v)}`);
      if (k === 'max-concurrency') opts.maxConcurrency = n;
      else opts.maxQueue = n;
    } else if (k === 'timeout') opts.timeoutMs = parseDuration(flag, v);
    else if (k === 'max-queue-bytes') opts.maxQueueBytes = parseBytes(flag, v);
    else if (k === 'protocol') opts.protocol = parseProtocol(spec, u, v);
    else throw new ConfigError(`--destination ${spec}: unknown setting ${JSON.stringify(k)} (known: max-concurrency, max-queue, max-queue-bytes, timeout, protocol)`);
  }
  return { url: new URL(u.origin), opts };
}

function parseProtocol(spec: string, u: URL, v: string): DestinationProtocol {
  const p = DESTINATION_PROTOCOLS.find((x) => x === v);
  if (!p) throw new ConfigError(`--destination ${spec}: protocol must be one of ${DESTINATION_PROTOCOLS.join(', ')} (got ${JSON.stringify(v)})`);
  if (p === 'h2c' && u.protocol !== 'http:') throw new ConfigError(`--destination ${spec}: protocol=h2c is HTTP/2 without TLS and needs http://; for TLS use https://…?protocol=h2`);
  if (p === 'h2' && u.protocol !== 'https:') throw new ConfigError(`--destination ${spec}: protocol=h2 is HTTP/2 over TLS (ALPN) and needs https://; without TLS use http://…?protocol=h2c`);
  return p;
}

/** A request-target the request line can carry: no SP, CTL or DEL (RFC 9112 §3.2). */
const VALID_TARGET = /^[\x21-\x7e\x80-\xff]+$/;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Sends of a request the server said it did not process, at most (a server going away again and again). */
const MAX_UNPROCESSED_SENDS = 4;

/**
 * Safe to send again: the server said it did not process it (HTTP/2 REFUSED_STREAM or above a
 * GOAWAY's last stream id, RFC 9113 §8.7: any method, up to MAX_UNPROCESSED_SENDS times), or an
 * idempotent request found its kept-alive connection closed before any answer byte (once, RFC 9110 §9.2.2).
 */
function retryable(err: H1Failure, ex: Exchange, method: string, sends: number): boolean {
  if (err instanceof ReplayTimeoutError || err instanceof ShutdownError) return false;
  if (ex.unprocessed) return sends < MAX_UNPROCESSED_SENDS;
  return sends === 1 && ex.reused && ex.responseBytes === 0 && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && IDEMPOTENT.has(method);
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** What Destination needs of an exchange, HTTP/1.1 (h1-client.ts) or HTTP/2 (h2-client.ts). */
interface Exchange {
  readonly done: boolean;
  /** Sent over a connection (session) that had already carried an answer. */
  readonly reused: boolean;
  /** The connection was established when the exchange ended. */
  readonly connected: boolean;
  readonly responseBytes: number;
  /** HTTP/2 only: the server said it did not process the request (safe to send again). */
  readonly unprocessed?: boolean;
  abort(err: H1Failure): void;
}

/** A request sent and not yet answered; in-flight requests form a list in deadline order. */
class InFlight implements H1Handler, H2Handler {
  prev: InFlight | null = null;
  next: InFlight | null = null;
  ex: Exchange | null = null;
  shutdown = false;
  /** Shadow testing: the answer digested from the client's framer events, as production's are. */
  digest: AnswerDigest | null = null;

  constructor(private readonly dest: Destination, readonly req: OutgoingRequest, readonly sends: number, readonly start: number, readonly deadline: number) {
    const a = req.answer;
    if (a) this.digest = new AnswerDigest(a.snippetBytes, a.captureJsonBytes);
  }

  onHead(h: ReplyHead): void {
    this.digest?.head(h);
  }

  onBody(b: Buffer, start: number, end: number): void {
    this.digest?.body(b, start, end);
  }

  onTrailers(fields: string[]): void {
    this.digest?.trailers(fields);
  }

  onDone(err: H1Failure | null, status: number, ex: Exchange): void {
    this.dest.settle(this, err, status, ex);
  }
}

/**
 * One test environment: a pool of keep-alive connections (src/replay/h1-client.ts), a bounded
 * queue and a concurrency limit. enqueue() never waits: when the queue is full the request is
 * dropped and counted.
 *
 * Our own client rather than node:http or undici: undici rewrites `Host` and `Content-Length` (lower
 * case, moved) and refuses duplicate Content-Length; node:http adds `Connection: keep-alive`, frames
 * body-less POSTs as chunked and was the daemon's bottleneck. h1-client sends the fields as given.
 * An h2c/h2 destination uses a pool of HTTP/2 sessions instead (h2-client.ts), behind the same
 * queue, limits, timeouts, retry and accounting; it gets only requests that came over HTTP/2, and
 * an http/1.1 destination only HTTP/1.x ones (protocol_mismatch otherwise).
 */
export class Destination {
  readonly url: URL;
  readonly label: string;
  readonly hostHeader: string;
  readonly protocol: DestinationProtocol;
  private readonly pool: H1Pool | null;
  private readonly h2pool: H2Pool | null;
  private readonly queue: OutgoingRequest[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** In-flight requests, oldest (earliest deadline: the timeout is the same for all) first. */
  private oldest: InFlight | null = null;
  private newest: InFlight | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Consecutive connect failures, and until when the destination is taken as down (ms). */
  private connectFailures = 0;
  private downUntil = 0;
  private backoffMs = 0;

  private readonly opts: DestinationOptions;

  constructor(spec: string, defaults: DestinationOptions, private readonly obs: ReplayObserver) {
    const { url, opts } = parseDestination(spec, defaults);
    this.url = url;
    this.opts = opts;
    this.label = this.url.origin;
    this.hostHeader = this.url.host;
    this.protocol = opts.protocol ?? 'http/1.1';
    const h2 = this.protocol !== 'http/1.1';
    this.pool = h2 ? null : new H1Pool(url, { maxConnections: opts.maxConcurrency, tlsInsecure: opts.tlsInsecure });
    // Sessions: as many as streams may be in flight, for a server that allows one stream each.
    this.h2pool = h2 ? new H2Pool(url, { maxSessions: opts.maxConcurrency, tlsInsecure: opts.tlsInsecure }) : null;
  }

  get queueDepth(): number {
    return this.queue.length - this.queueHead;
  }
  get inFlight(): number {
    return this.inflight;
  }

  enqueue(req: OutgoingRequest): void {
    if (this.closed) {
      this.obs.dropped('shutdown', 1, this.label);
      req.answer?.failed('shutdown');
      return;
    }
    if ((req.h2 !== undefined) !== (this.h2pool !== null)) {
      this.obs.dropped('protocol_mismatch', 1, this.label);
      req.answer?.failed('protocol_mismatch');
      return;
    }
    if (!VALID_TARGET.test(req.target) || (req.h2 && !this.h2Block(req))) {
      // A target: only an --http-rewrite-url replacement can produce this (the parser checked production's).
      this.obs.error(this.label, InvalidTargetError.code);
      this.obs.dropped('invalid_for_replay', 1, this.label);
      req.answer?.failed('invalid_for_replay');
      return;
    }
    if (this.downUntil && performance.now() < this.downUntil) {
      // Known down: fail fast instead of a connect attempt per request.
      this.obs.error(this.label, DestinationDownError.code);
      this.obs.dropped('connect_error', 1, this.label);
      req.answer?.failed('connect_error');
      return;
    }
    if (req.body.length > this.opts.maxQueueBytes) {
      this.obs.dropped('body_too_large', 1, this.label);
      req.answer?.failed('body_too_large');
      return;
    }
    if (this.inflight < this.opts.maxConcurrency && this.queueDepth === 0) {
      this.send(req, 1);
      return;
    }
    if (this.queueDepth >= this.opts.maxQueue || this.queuedBytes + req.body.length > this.opts.maxQueueBytes) {
      this.obs.dropped('queue_full', 1, this.label);
      req.answer?.failed('queue_full');
      return;
    }
    this.queue.push(req);
    this.queuedBytes += req.body.length;
  }

  /** Resolves when nothing is queued or in flight, or after `ms` (what is left is dropped, counted). */
  async drain(ms: number): Promise<void> {
    this.closed = true;
    if (this.inflight > 0 || this.queueDepth > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const left = this.queueDepth;
    if (left) this.obs.dropped('shutdown', left, this.label);
    for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i]?.answer?.failed('shutdown');
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
    // Each abort settles its request at once (counted as shutdown), so the counts are final below.
    const err = new ShutdownError('destination drained');
    while (this.oldest) {
      const f = this.oldest;
      f.shutdown = true;
      if (f.ex && !f.ex.done) f.ex.abort(err);
      else this.unlink(f); // not expected: an exchange settles before it leaves the list
    }
    this.pool?.destroy(err);
    this.h2pool?.destroy(err);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * After 5 connect failures in a row the destination is taken as down for a backoff (0.5 s,
   * doubling while probes keep failing, up to 10 s); one answer resets it. While down, queued and
   * new requests are dropped as connect_error at once instead of a connect attempt each.
   */
  private health(reason: DropReason | null): void {
    if (reason === null) {
      this.connectFailures = 0;
      this.backoffMs = 0;
      this.downUntil = 0;
      return;
    }
    if (reason !== 'connect_error') return;
    const now = performance.now();
    if (now < this.downUntil) return; // stragglers from before the down period
    if (this.backoffMs > 0) this.backoffMs = Math.min(10_000, this.backoffMs * 2); // a probe failed
    else if (++this.connectFailures >= 5) this.backoffMs = 500;
    else return;
    this.connectFailures = 0;
    this.downUntil = now + this.backoffMs;
    const n = this.queueDepth;
    for (let i = 0; i < n; i++) {
      this.obs.error(this.label, DestinationDownError.code);
      this.obs.dropped('connect_error', 1, this.label);
      this.queue[this.queueHead + i]?.answer?.failed('connect_error');
    }
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
  }

  /** True while the destination is taken as down after repeated connect failures. */
  get down(): boolean {
    return this.downUntil > 0 && performance.now() < this.downUntil;
  }

  private next(): void {
    while (this.inflight < this.opts.maxConcurrency && this.queueDepth > 0) {
      const req = this.queue[this.queueHead];
      (this.queue as unknown[])[this.queueHead++] = undefined;
      this.queuedBytes -= req.body.length;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.send(req, 1);
    }
    if (this.inflight === 0 && this.queueDepth === 0 && this.idleWaiters.length) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** `sends`: how many times this request has been sent, this one included. */
  private send(req: OutgoingRequest, sends: number): void {
    this.inflight++;
    const now = performance.now();
    const f = new InFlight(this, req, sends, now, now + this.opts.timeoutMs);
    // Append: deadlines are in send order because every request has the same timeout.
    f.prev = this.newest;
    if (this.newest) this.newest.next = f;
    else this.oldest = f;
    this.newest = f;
    if (!this.timer) this.arm(f.deadline);
    if (this.pool) f.ex = this.pool.request(req, f);
    else {
      const b = req.h2!.block!;
      f.ex = this.h2pool!.request({ ...req, authority: req.h2!.authority }, b.fields, b.trailers, f);
    }
  }

  /** Builds the HTTP/2 header block of `req` once, at enqueue (kept for the send); false when HTTP/2 cannot carry it. */
  private h2Block(req: OutgoingRequest): boolean {
    const b = h2Fields({ ...req, authority: req.h2!.authority }, this.url.protocol === 'https:' ? 'https' : 'http');
    if (typeof b === 'string') return false;
    req.h2!.block = b;
    return true;
  }

  /** One timer per destination, for the oldest request in flight (not one per request). */
  private arm(at: number): void {
    // Left armed when its request settles (it re-arms for the next oldest): no timer per request.
    // Unref'd: a request in flight keeps the process alive through its socket.
    this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(at - performance.now())));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = null;
    const now = performance.now();
    while (this.oldest && this.oldest.deadline <= now) {
      const f = this.oldest;
      if (f.ex && !f.ex.done) f.ex.abort(new ReplayTimeoutError(`no answer within ${this.opts.timeoutMs} ms`));
      else this.unlink(f);
    }
    if (this.oldest) this.arm(this.oldest.deadline);
  }

  private unlink(f: InFlight): void {
    if (f.prev) f.prev.next = f.next;
    else if (this.oldest === f) this.oldest = f.next;
    else return; // already unlinked
    if (f.next) f.next.prev = f.prev;
    else this.newest = f.prev;
    f.prev = f.next = null;
  }

  /** @internal An exchange ended: count it, maybe retry, start the next. */
  settle(f: InFlight, err: H1Failure | null, status: number, ex: Exchange): void {
    this.unlink(f);
    this.inflight--;
    const req = f.req;
    const a = req.answer;
    if (err) {
      const code = err.code ?? 'UNKNOWN';
      if (!f.shutdown && !this.closed && retryable(err, ex, req.method, f.sends)) {
        this.obs.retried?.(this.label);
        this.send(req, f.sends + 1);
        this.next();
        return;
      }
      this.obs.error(this.label, code);
      let reason: DropReason = 'upstream_error';
      if (f.shutdown) reason = 'shutdown';
      else if (err instanceof ReplayTimeoutError) reason = 'timeout';
      else if (CONNECT_CODES.has(code) || (!ex.connected && !ex.reused && (code === 'ECONNRESET' || code === 'EPIPE'))) reason = 'connect_error';
      this.obs.dropped(reason, 1, this.label);
      a?.failed(reason);
      this.health(reason);
    } else {
      this.obs.replayed(this.label, status, (performance.now() - f.start) / 1000);
      // An exchange ends without error only after its answer's head and end events.
      if (a) a.answered(f.digest!.finish());
      this.health(null);
    }
    this.next();
  }
}
