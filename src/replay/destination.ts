import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { ConfigError } from '../errors.js';
import { parseBytes, parseDuration } from '../config/units.js';
import { BodyDigest, digestHeaders, HttpResponseParser, type ResponseDigest } from '../http/response.js';
import type { DropReason, ReplayObserver } from './outcome.js';

/** A request ready to send: production's, with forwarded headers already applied. */
export interface OutgoingRequest {
  method: string;
  target: string;
  headers: string[];
  body: Buffer;
  chunked: boolean;
  trailers: string[];
  /** 0 for HTTP/1.0: node:http only speaks 1.1, so these go out over a plain socket. */
  minorVersion: number;
  /** Shadow testing: told the digest of the answer, or why there is none (exactly once). */
  answer?: AnswerSink;
}

/** Receives a destination's answer digested like production's (src/http/response.ts). */
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
}

/**
 * A destination URL may override the global limits in its query string, so a slow test
 * environment can be given a small queue without starving the others:
 * `http://10.0.0.37:8080?max-queue=500&timeout=2s&max-concurrency=16&max-queue-bytes=64MiB`.
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
    else throw new ConfigError(`--destination ${spec}: unknown setting ${JSON.stringify(k)} (known: max-concurrency, max-queue, max-queue-bytes, timeout)`);
  }
  return { url: new URL(u.origin), opts };
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

class TimeoutError extends Error {
  readonly code = 'MR_TIMEOUT';
}

/**
 * One test environment: a keep-alive node:http Agent, a bounded queue and a concurrency limit.
 * enqueue() never waits: when the queue is full the request is dropped and counted.
 *
 * node:http rather than undici: undici rewrites `Host` and `Content-Length` (lower case, moved)
 * and refuses duplicate Content-Length, so it cannot replay header order and case faithfully.
 */
export class Destination {
  readonly url: URL;
  readonly label: string;
  readonly hostHeader: string;
  private readonly agent: http.Agent;
  private readonly tls: boolean;
  private readonly queue: OutgoingRequest[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly inflightReqs = new Set<http.ClientRequest>();
  private readonly inflightSockets = new Set<net.Socket>();
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
    const agentOpts = { keepAlive: true, maxSockets: opts.maxConcurrency, maxFreeSockets: opts.maxConcurrency, scheduling: 'lifo' as const };
    this.tls = this.url.protocol === 'https:';
    this.agent = this.tls ? new https.Agent({ ...agentOpts, rejectUnauthorized: !opts.tlsInsecure }) : new http.Agent(agentOpts);
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
    if (this.downUntil && performance.now() < this.downUntil) {
      // Known down: fail fast instead of a connect attempt per request.
      this.obs.error(this.label, 'MR_DESTINATION_DOWN');
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
      this.send(req, false);
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
    for (const r of this.inflightReqs) {
      (r as http.ClientRequest & { mrShutdown?: boolean }).mrShutdown = true;
      r.destroy();
    }
    for (const sock of this.inflightSockets) sock.destroy();
    // Their error handlers count them as shutdown; wait so the counts are final when we return.
    const until = Date.now() + 1000;
    while (this.inflight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    this.agent.destroy();
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
      this.obs.error(this.label, 'MR_DESTINATION_DOWN');
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
      this.send(req, false);
    }
    if (this.inflight === 0 && this.queueDepth === 0 && this.idleWaiters.length) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  private send(req: OutgoingRequest, isRetry: boolean): void {
    if (req.minorVersion === 0 && !req.chunked) {
      this.sendHttp10(req);
      return;
    }
    this.inflight++;
    const start = performance.now();
    let done = false;
    let cr: http.ClientRequest;
    const finish = (err: (Error & { code?: string }) | null, status: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.inflightReqs.delete(cr);
      this.inflight--;
      if (err) {
        const code = err.code ?? 'UNKNOWN';
        if (!isRetry && code === 'ECONNRESET' && cr.reusedSocket && IDEMPOTENT.has(req.method) && !this.closed) {
          // The keep-alive socket was closed by the server as we reused it: safe to send again.
          this.send(req, true);
          this.next();
          return;
        }
        this.obs.error(this.label, code);
        let reason: DropReason = 'upstream_error';
        if ((cr as http.ClientRequest & { mrShutdown?: boolean }).mrShutdown) reason = 'shutdown';
        else if (err instanceof TimeoutError) reason = 'timeout';
        else if (CONNECT_CODES.has(code) || (code === 'ECONNRESET' && !cr.reusedSocket && !cr.socket?.bytesWritten)) reason = 'connect_error';
        this.obs.dropped(reason, 1, this.label);
        req.answer?.failed(reason);
        this.health(reason);
      } else {
        this.obs.replayed(this.label, status, (performance.now() - start) / 1000);
        if (answered) req.answer?.answered(answered);
        this.health(null);
      }
      this.next();
    };
    let answered: ResponseDigest | null = null;
    try {
      cr = (this.tls ? https : http).request({
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port || (this.tls ? 443 : 80),
        method: req.method,
        path: req.target,
        headers: req.headers,
        setHost: false,
        agent: this.agent,
      });
    } catch (e) {
      this.inflight--;
      this.obs.error(this.label, (e as { code?: string }).code ?? 'UNKNOWN');
      this.obs.dropped('invalid_for_replay', 1, this.label);
      req.answer?.failed('invalid_for_replay');
      return;
    }
    this.inflightReqs.add(cr);
    const timer = setTimeout(() => cr.destroy(new TimeoutError(`no answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    cr.on('response', (res) => {
      const a = req.answer;
      if (a) {
        // Shadow testing: digest the answer as it streams, like production's.
        const headers = digestHeaders(res.rawHeaders);
        const body = new BodyDigest(a.snippetBytes, a.captureJsonBytes, headers);
        res.on('data', (c: Buffer) => body.update(c));
        res.on('end', () => {
          answered = body.finish(res.statusCode ?? 0, res.httpVersionMinor, headers);
          finish(null, res.statusCode ?? 0);
        });
      } else {
        res.on('end', () => finish(null, res.statusCode ?? 0));
        res.resume();
      }
      res.on('error', (e) => finish(e, 0));
    });
    cr.on('error', (e) => finish(e, 0));
    if (req.chunked) {
      if (req.body.length) cr.write(req.body);
      if (req.trailers.length) {
        const t: Array<[string, string]> = [];
        for (let i = 0; i < req.trailers.length; i += 2) t.push([req.trailers[i], req.trailers[i + 1]]);
        cr.addTrailers(t);
      }
      cr.end();
    } else {
      if (req.body.length === 0 && (cr as unknown as { useChunkedEncodingByDefault: boolean }).useChunkedEncodingByDefault && !hasContentLength(req.headers)) {
        // node:http frames a body-less POST/PUT/PATCH without Content-Length as chunked.
        this.obs.altered('empty_body_framing');
      }
      cr.end(req.body.length ? req.body : undefined);
    }
  }

  /**
   * HTTP/1.0 exactly as production got it (node:http only speaks 1.1): one connection per
   * request, closed by the server after its answer. Only the status line is read.
   */
  private sendHttp10(req: OutgoingRequest): void {
    this.inflight++;
    const start = performance.now();
    let head = `${req.method} ${req.target} HTTP/1.0\r\n`;
    for (let i = 0; i < req.headers.length; i += 2) head += `${req.headers[i]}: ${req.headers[i + 1]}\r\n`;
    head += '\r\n';
    const port = Number(this.url.port || (this.tls ? 443 : 80));
    const sock = this.tls
      ? tls.connect({ host: this.url.hostname, port, servername: net.isIP(this.url.hostname) ? undefined : this.url.hostname, rejectUnauthorized: !this.opts.tlsInsecure })
      : net.connect({ host: this.url.hostname, port });
    this.inflightSockets.add(sock);
    let status = 0;
    let first = '';
    let done = false;
    // Shadow testing: the whole answer goes through the response parser (digest as production's).
    let answered: ResponseDigest | null = null;
    const a = req.answer;
    const parser = a
      ? new HttpResponseParser({ requestMethod: () => req.method, onResponse: (d) => (answered ??= d), onLost: () => {} }, { snippetBytes: a.snippetBytes, captureJsonBytes: a.captureJsonBytes })
      : null;
    const finish = (err: (Error & { code?: string }) | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.inflightSockets.delete(sock);
      sock.destroy();
      this.inflight--;
      if (parser && !err) parser.end();
      if (a) {
        if (answered) a.answered(answered);
        else a.failed(status > 0 ? 'upstream_error' : err instanceof TimeoutError ? 'timeout' : 'upstream_error');
      }
      if (status > 0) this.obs.replayed(this.label, status, (performance.now() - start) / 1000);
      else {
        const e = err ?? Object.assign(new Error('connection closed before a status line'), { code: 'ECONNRESET' });
        const code = e.code ?? 'UNKNOWN';
        this.obs.error(this.label, code);
        const reason: DropReason = this.closed && !(e instanceof TimeoutError) ? 'shutdown' : e instanceof TimeoutError ? 'timeout' : CONNECT_CODES.has(code) ? 'connect_error' : 'upstream_error';
        this.obs.dropped(reason, 1, this.label);
        this.health(reason);
      }
      if (status > 0) this.health(null);
      this.next();
    };
    const timer = setTimeout(() => finish(new TimeoutError(`no answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    sock.on(this.tls ? 'secureConnect' : 'connect', () => {
      sock.write(head, 'latin1');
      if (req.body.length) sock.write(req.body);
    });
    sock.on('data', (d: Buffer) => {
      parser?.push(d, 0, d.length);
      if (status) return;
      first += d.toString('latin1', 0, Math.min(d.length, 64));
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(first);
      if (m) status = Number(m[1]);
      else if (first.length >= 16) finish(Object.assign(new Error('not an HTTP response'), { code: 'MR_BAD_RESPONSE' }));
    });
    sock.on('end', () => finish(null));
    sock.on('close', () => finish(null));
    sock.on('error', (e) => finish(e));
  }
}

function hasContentLength(h: string[]): boolean {
  for (let i = 0; i < h.length; i += 2) if (h[i].length === 14 && h[i].toLowerCase() === 'content-length') return true;
  return false;
}
