/**
 * The shadow-testing stage: pairs each request with production's response (parsed from the
 * mirrored server-to-client stream) and with each destination's answer, compares them, and
 * reports metrics and the diff log.
 *
 * Pairing is by order on an HTTP/1.x connection (answers come in request order, pipelining
 * included), and by stream id on an HTTP/2 one (production.ts tells which the server speaks; an
 * h2c upgrade's request is stream 1). A connection is compared only when both of its directions
 * were seen from their start: after a midstream pickup nobody can tell which response answers
 * which request, so those requests count as `unpaired`. A response lost in the mirror (or an
 * HTTP/2 stream reset) makes its request unpaired; when the response side loses its place (or
 * HTTP/2's header compression state), the rest of the connection is unpaired.
 */
import type { Logger } from 'pino';
import type { HttpRequest } from '../http/types.js';
import type { ResponseDigest, ResponseLossReason } from '../http/response.js';
import type { FlowInfo, GapCause, StreamSink, TaintCause } from '../reassemble/stream.js';
import type { AnswerSink } from '../replay/destination.js';
import { compareResponses, isNoise, type CompareOptions, type CompareResult, type Comparison } from './compare.js';
import type { DiffLog } from './difflog.js';
import { h2AnswerReader } from './h2answers.js';
import { ProductionSide, type AnswerLossReason, type H2AnswerReaderFactory, type ProductionEvents } from './production.js';
import { compileRoutes, OTHER_ROUTE, pathOf } from './routes.js';

export interface ShadowOptions {
  compare: CompareOptions;
  /** --compare-route templates. */
  routes: string[];
  /** --diff-body-bytes: body bytes kept per side for the diff log (0 = none). */
  snippetBytes: number;
  /** Largest JSON body kept for structural comparison (only with --compare-json-ignore). */
  captureJsonBytes: number;
  /** Every destination's label, in replay order. */
  destinations: string[];
  /** Index of the --baseline-destination in `destinations`, or -1. */
  baseline: number;
  /** Requests of one connection waiting for production's response; beyond, the oldest is unpaired. */
  maxPendingPerConnection?: number;
  /** With this many requests and no response segment at all, only inbound traffic is mirrored. */
  inactiveAfterRequests?: number;
  inactiveAfterMs?: number;
}

/** How a compared request travelled (the replay counters' protocol label, with gRPC apart): HTTP/1.x, HTTP/2, or gRPC (HTTP/2 with content-type application/grpc*). */
export const SHADOW_PROTOCOLS = ['h1', 'h2', 'grpc'] as const;
export type ShadowProtocol = (typeof SHADOW_PROTOCOLS)[number];

/** What the stage reports, as it happens (metrics/compare.ts turns it into metrics). */
export interface ShadowObserver {
  /** Comparison works (production's responses appear on the mirror), or no longer does. */
  active(on: boolean): void;
  compared(destination: string, route: string, result: CompareResult, noise: boolean, protocol: ShadowProtocol): void;
  /** A production response seen on the mirror that could not be digested. */
  lost(reason: AnswerLossReason): void;
  diffLogFailures(lines: number): void;
}

/** What the request side of a connection tells the stage. */
export interface RequestSide {
  /** A parsed request; `submit` replays it with these answer sinks and says whether the policy kept it. */
  request(req: HttpRequest, submit: (answers: AnswerSink[]) => boolean): void;
  /** The request parser lost `n` requests (the server still answers them). */
  dropped(n: number): void;
}

interface Exchange {
  method: string;
  target: string;
  protocol: ShadowProtocol;
  admitted: boolean;
  /** undefined: waiting; null: none usable (prodLoss says why). */
  prod: ResponseDigest | null | undefined;
  prodLoss: string;
  answers: Array<ResponseDigest | string | undefined>;
  waiting: number;
}

const MAX_EARLY = 8;
const STATS_EVERY_MS = 10_000;

export class Shadow {
  private readonly conns = new Map<string, Connection>();
  private readonly route: (target: string) => string;
  private readonly candidates: number[];
  private state: 'unknown' | 'active' | 'inactive' = 'unknown';
  private requestsSeen = 0;
  private firstRequestAt = 0;
  private lastResponseSegments = 0;
  private lastStats = 0;
  private counts: Record<string, Record<string, number>> = {};
  private noiseCounts: Record<string, Record<string, number>> = {};
  private countsDirty = false;
  private sawResponseFlow = false;

  constructor(
    readonly opts: ShadowOptions,
    private readonly metrics: ShadowObserver,
    private readonly diffLog: DiffLog | null,
    private readonly log: Logger,
    /** Reads production's HTTP/2 answers per stream (src/http2/). */
    private readonly h2Answers: H2AnswerReaderFactory = h2AnswerReader,
  ) {
    this.route = compileRoutes(opts.routes);
    this.candidates = opts.destinations.map((_, i) => i).filter((i) => i !== opts.baseline);
    metrics.active(false);
  }

  /** Open connections being paired (for tests). */
  get connections(): number {
    return this.conns.size;
  }

  /**
   * The request side of a new client-to-server flow, or null while comparison is inactive.
   * Returns the sink to give the table: `parser` wrapped so the stage sees the flow end.
   */
  requestSide(info: FlowInfo, midstream: boolean, parser: StreamSink): { side: RequestSide; sink: StreamSink } | null {
    if (this.state === 'inactive') return null;
    const key = connKey(info);
    let c = this.conns.get(key);
    if (!c || c.reqAttached) {
      c = new Connection(this, key);
      this.conns.set(key, c);
    }
    c.reqAttached = true;
    if (midstream) c.breakAll('midstream');
    const conn = c;
    const sink: StreamSink = {
      push: (b, o, l) => parser.push(b, o, l),
      gap: (n: number, cause?: GapCause) => parser.gap(n, cause),
      taint: (cause: TaintCause) => parser.taint(cause),
      stalled: () => parser.stalled(),
      peer: (b, o, l) => parser.peer?.(b, o, l),
      end: () => {
        parser.end();
        conn.requestEnded();
      },
      get bufferedBytes() {
        return parser.bufferedBytes;
      },
      get pendingBytes() {
        return parser.pendingBytes;
      },
    };
    return { side: conn, sink };
  }

  /** The sink for a new server-to-client flow (the responses table's factory). */
  responseSink(info: FlowInfo, midstream: boolean): StreamSink {
    this.sawResponseFlow = true;
    const key = connKey(info);
    let c = this.conns.get(key);
    if (!c || c.respAttached) {
      c = new Connection(this, key);
      this.conns.set(key, c);
    }
    c.respAttached = true;
    if (midstream) c.breakAll('midstream');
    const conn = c;
    const guard = new ProductionSide(conn, midstream, { snippetBytes: this.opts.snippetBytes, captureJsonBytes: this.opts.captureJsonBytes }, this.h2Answers);
    return {
      push: (b, o, l) => guard.push(b, o, l),
      gap: (n: number, cause?: GapCause) => guard.gap(n, cause),
      taint: (cause: TaintCause) => guard.taint(cause),
      stalled: () => {},
      end: () => {
        guard.end();
        conn.responseEnded();
      },
      get bufferedBytes() {
        return guard.bufferedBytes;
      },
      get pendingBytes() {
        return guard.pendingBytes;
      },
    };
  }

  /**
   * Called from the daemon's sweep. `responseSegments`: server-to-client segments seen so far.
   * Decides whether comparison can work (are responses mirrored at all?) and writes stats lines.
   */
  tick(now: number, responseSegments: number): void {
    if (responseSegments > this.lastResponseSegments) {
      this.lastResponseSegments = responseSegments;
      if (this.state !== 'active') {
        if (this.state === 'inactive') this.log.info("shadow testing: production's responses now appear on the mirror; comparing");
        this.state = 'active';
        this.metrics.active(true);
      }
    } else if (this.state === 'unknown' && this.requestsSeen > 0) {
      const n = this.opts.inactiveAfterRequests ?? 100;
      const ms = this.opts.inactiveAfterMs ?? 10_000;
      if (this.requestsSeen >= n || now - this.firstRequestAt >= ms) {
        this.state = 'inactive';
        this.metrics.active(false);
        this.log.warn({ requests: this.requestsSeen }, 'shadow testing inactive: no server-to-client traffic on the mirror (only inbound is mirrored?); replay goes on without comparison. Mirror outbound traffic from the service port too (AWS: a filter rule for outbound, source port = service port)');
      }
    }
    if (this.diffLog && this.countsDirty && now - this.lastStats >= STATS_EVERY_MS) this.flushStats(now);
    if (this.diffLog && this.diffLog.failedWrites > 0) {
      this.metrics.diffLogFailures(this.diffLog.failedWrites);
      this.diffLog.failedWrites = 0;
    }
  }

  /** Stop: every waiting request is unpaired; the last stats line is written. */
  close(): void {
    // A short capture file can end before the sweep decides: say it here, once.
    if (this.state === 'unknown' && this.requestsSeen > 0 && !this.sawResponseFlow) {
      this.log.warn({ requests: this.requestsSeen }, 'shadow testing: no server-to-client traffic was seen, so no production answer to compare with (every request unpaired); a capture file must hold both directions');
    }
    for (const c of [...this.conns.values()]) c.breakAll('shutdown');
    this.conns.clear();
    if (this.diffLog) {
      if (this.countsDirty) this.flushStats(Date.now());
      this.diffLog.close();
    }
  }

  // ---- used by Connection ----

  noteRequest(): void {
    if (this.requestsSeen++ === 0) this.firstRequestAt = Date.now();
  }

  forget(c: Connection): void {
    if (this.conns.get(c.key) === c) this.conns.delete(c.key);
  }

  lost(reason: AnswerLossReason): void {
    this.metrics.lost(reason);
  }

  newExchange(req: HttpRequest | null): Exchange {
    return { method: req?.method ?? '', target: req?.target ?? '', protocol: protocolOf(req), admitted: false, prod: undefined, prodLoss: '', answers: [], waiting: 0 };
  }

  answerSinks(ex: Exchange): AnswerSink[] {
    const n = this.opts.destinations.length;
    ex.answers = new Array(n).fill(undefined);
    ex.waiting = n;
    const sinks: AnswerSink[] = [];
    for (let i = 0; i < n; i++) {
      let done = false;
      const settle = (v: ResponseDigest | string) => {
        if (done) return;
        done = true;
        ex.answers[i] = v;
        ex.waiting--;
        this.maybeFinish(ex);
      };
      sinks.push({ snippetBytes: this.opts.snippetBytes, captureJsonBytes: this.opts.captureJsonBytes, answered: settle, failed: settle });
    }
    return sinks;
  }

  maybeFinish(ex: Exchange): void {
    if (!ex.admitted || ex.prod === undefined || ex.waiting > 0) return;
    ex.admitted = false; // finish once
    const route = this.route(ex.target);
    const path = pathOf(ex.target);
    const base = this.opts.baseline >= 0 ? ex.answers[this.opts.baseline] : undefined;
    for (const i of this.candidates) {
      const dest = this.opts.destinations[i];
      const a = ex.answers[i];
      let result: CompareResult;
      let cmp: Comparison | null = null;
      let noise = false;
      let unpaired: { side: 'production' | 'test'; reason: string } | undefined;
      if (ex.prod === null) {
        result = 'unpaired';
        unpaired = { side: 'production', reason: ex.prodLoss };
      } else if (typeof a !== 'object') {
        result = 'unpaired';
        unpaired = { side: 'test', reason: a ?? 'unknown' };
      } else {
        cmp = compareResponses(ex.prod, a, this.opts.compare);
        result = cmp.result;
        if (result !== 'match' && base && typeof base === 'object') noise = isNoise(cmp, compareResponses(ex.prod, base, this.opts.compare));
      }
      this.metrics.compared(dest, route, result, noise, ex.protocol);
      this.count(dest, result, noise);
      if (result !== 'match' && this.diffLog) {
        this.diffLog.diff(
          {
            destination: dest,
            method: ex.method,
            path,
            route: route === OTHER_ROUTE ? path : route,
            result,
            noise,
            unpaired,
            production: ex.prod ?? null,
            test: typeof a === 'object' ? a : null,
            headers: cmp?.headers ?? [],
            ...(cmp?.trailers ? { trailers: cmp.trailers } : {}),
            ...(ex.protocol === 'grpc' ? { grpc: true } : {}),
          },
          this.opts.snippetBytes,
        );
      }
    }
  }

  private count(dest: string, result: string, noise: boolean): void {
    const c = (this.counts[dest] ??= {});
    c[result] = (c[result] ?? 0) + 1;
    if (noise) {
      const n = (this.noiseCounts[dest] ??= {});
      n[result] = (n[result] ?? 0) + 1;
    }
    this.countsDirty = true;
  }

  private flushStats(now: number): void {
    this.diffLog!.stats(this.counts, this.noiseCounts);
    this.counts = {};
    this.noiseCounts = {};
    this.countsDirty = false;
    this.lastStats = now;
  }
}

/** Production's answer to an HTTP/2 stream whose request is not parsed yet, or why it was lost. */
type EarlyStream = ResponseDigest | { lost: string };

/**
 * One TCP connection: its HTTP/1.x requests in order, or its HTTP/2 requests by stream, waiting
 * for production's answers.
 */
class Connection implements ProductionEvents {
  reqAttached = false;
  respAttached = false;
  private reqEnded = false;
  private respEnded = false;
  private readonly pending: Exchange[] = [];
  /** Responses (or losses: null) that came before their request was parsed. */
  private readonly early: Array<ResponseDigest | null> = [];
  /** HTTP/2: requests by stream id, and answers whose request is not parsed yet. */
  private readonly streams = new Map<number, Exchange>();
  private readonly earlyStreams = new Map<number, EarlyStream>();
  /** The server speaks HTTP/2 here (its SETTINGS, or a 101 to h2c, was seen). */
  private h2 = false;
  /** A 101 to h2c came before the upgraded request was parsed: that request becomes stream 1. */
  private awaitingUpgraded = false;
  upgradedToH2 = false;
  /** Why pairing is over for this connection, or '' while it works. */
  private broken = '';

  constructor(private readonly stage: Shadow, readonly key: string) {}

  // RequestSide

  request(req: HttpRequest, submit: (answers: AnswerSink[]) => boolean): void {
    const s = this.stage;
    s.noteRequest();
    const ex = s.newExchange(req);
    const sinks = s.answerSinks(ex);
    if (req.h2) {
      // The request side switched too: it gives the upgraded request as stream 1 itself.
      this.awaitingUpgraded = false;
      this.attachStream(req.h2.streamId, ex);
    } else if (this.awaitingUpgraded) this.attachUpgraded(ex);
    else this.attach(ex);
    ex.admitted = submit(sinks);
    s.maybeFinish(ex);
  }

  dropped(n: number): void {
    // HTTP/2 drops name no stream: their answers wait unclaimed among earlyStreams and age out.
    if (this.h2 && !this.awaitingUpgraded) return;
    for (let i = 0; i < n; i++) {
      const ex = this.stage.newExchange(null);
      if (this.awaitingUpgraded) this.attachUpgraded(ex);
      else this.attach(ex);
    }
  }

  // ResponseParserEvents (HTTP/1.x)

  requestMethod(): string | null {
    const ex = this.pending[0];
    return ex ? ex.method || 'GET' : null;
  }

  onResponse(d: ResponseDigest): void {
    if (d.status === 101 && upgradesToH2c(d)) return this.switchToH2();
    const ex = this.pending.shift();
    if (ex) this.settle(ex, d, '');
    else if (this.early.length < MAX_EARLY) this.early.push(d);
    else this.breakAll('too_many_early_responses');
  }

  onLost(reason: ResponseLossReason, inSync: boolean): void {
    this.stage.lost(reason);
    if (!inSync) {
      this.breakAll(`response_${reason}`);
      return;
    }
    const ex = this.pending.shift();
    if (ex) this.settle(ex, null, `response_${reason}`);
    else if (this.early.length < MAX_EARLY) this.early.push(null);
    else this.breakAll('too_many_early_responses');
  }

  onTunnel(): void {
    this.breakAll('upgraded');
  }

  // H2AnswerEvents

  h2Detected(): void {
    this.h2 = true;
  }

  answer(id: number, d: ResponseDigest): void {
    this.streamSettled(id, d, '');
  }

  streamLost(id: number, reason: AnswerLossReason): void {
    this.stage.lost(reason);
    this.streamSettled(id, null, `response_${reason}`);
  }

  connectionLost(reason: AnswerLossReason, midstream = false): void {
    if (midstream) return this.breakAll('midstream');
    this.stage.lost(reason);
    this.breakAll(`response_${reason}`);
  }

  // lifecycle

  requestEnded(): void {
    this.reqEnded = true;
    if (!this.respAttached) this.breakAll('no_response_stream');
    if (this.respEnded || !this.respAttached) this.stage.forget(this);
  }

  responseEnded(): void {
    this.respEnded = true;
    this.breakAll('no_response');
    if (this.reqEnded || !this.reqAttached) this.stage.forget(this);
  }

  breakAll(why: string): void {
    if (!this.broken) this.broken = why;
    this.early.length = 0;
    this.earlyStreams.clear();
    for (const ex of this.pending.splice(0)) this.settle(ex, null, why);
    const open = [...this.streams.values()];
    this.streams.clear();
    for (const ex of open) this.settle(ex, null, why);
  }

  private attach(ex: Exchange): void {
    if (this.broken) {
      this.settle(ex, null, this.broken);
      return;
    }
    if (this.early.length) {
      const d = this.early.shift()!;
      this.settle(ex, d, d ? '' : 'response_gap');
      return;
    }
    this.pending.push(ex);
    // So many unanswered requests: responses are not coming (or pairing is lost); stop guessing.
    if (this.pending.length > this.maxPending()) this.breakAll('too_many_pending');
  }

  private attachStream(id: number, ex: Exchange): void {
    if (this.broken) return this.settle(ex, null, this.broken);
    const early = this.earlyStreams.get(id);
    if (early !== undefined) {
      this.earlyStreams.delete(id);
      return 'lost' in early ? this.settle(ex, null, early.lost) : this.settle(ex, early, '');
    }
    if (this.streams.has(id)) return this.settle(ex, null, 'duplicate_stream');
    this.streams.set(id, ex);
    if (this.streams.size > this.maxPending()) this.breakAll('too_many_pending');
  }

  /** The request of an h2c upgrade: answered on stream 1. */
  private attachUpgraded(ex: Exchange): void {
    this.awaitingUpgraded = false;
    this.attachStream(1, ex);
  }

  /** 101 to h2c: the oldest request waiting is the upgraded one (stream 1); HTTP/1.x answers end here. */
  private switchToH2(): void {
    this.h2 = true;
    this.upgradedToH2 = true;
    const ex = this.pending.shift();
    if (ex) this.attachStream(1, ex);
    else this.awaitingUpgraded = true;
    // Pipelined after the upgrade request: a server that switches answers none of them (RFC 9110 §7.8).
    for (const later of this.pending.splice(0)) this.settle(later, null, 'upgraded');
  }

  private streamSettled(id: number, d: ResponseDigest | null, why: string): void {
    if (this.broken) return;
    const ex = this.streams.get(id);
    if (ex) {
      this.streams.delete(id);
      return this.settle(ex, d, why);
    }
    // The request is not parsed yet, or never will be (its stream was dropped): keep a few, oldest out first.
    this.earlyStreams.set(id, d ?? { lost: why });
    if (this.earlyStreams.size > this.maxPending()) this.earlyStreams.delete(this.earlyStreams.keys().next().value!);
  }

  private maxPending(): number {
    return this.stage.opts.maxPendingPerConnection ?? 128;
  }

  private settle(ex: Exchange, d: ResponseDigest | null, why: string): void {
    ex.prod = d;
    ex.prodLoss = why;
    this.stage.maybeFinish(ex);
  }
}

/** Does a 101 switch to HTTP/2 over cleartext (RFC 7540 §3.2)? */
function upgradesToH2c(d: ResponseDigest): boolean {
  for (let i = 0; i < d.headers.length; i += 2) if (d.headers[i] === 'upgrade' && /(^|,)\s*h2c\s*($|,)/i.test(d.headers[i + 1])) return true;
  return false;
}

/** gRPC when the request's content-type is application/grpc (or +proto, +json, ...). */
function protocolOf(req: HttpRequest | null): ShadowProtocol {
  if (!req?.h2) return 'h1';
  for (let i = 0; i < req.headers.length; i += 2) {
    if (req.headers[i].toLowerCase() === 'content-type' && /^application\/grpc(\+|;|$)/i.test(req.headers[i + 1])) return 'grpc';
  }
  return 'h2';
}

function connKey(i: FlowInfo): string {
  return `${i.clientAddr} ${i.clientPort} ${i.serverAddr} ${i.serverPort} ${i.vni ?? -1}`;
}
