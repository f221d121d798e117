/**
 * The hand-off of complete requests from a capture worker to the main thread, which replays them.
 * Requests and drops travel in batches (one postMessage per batch, not per request). Small bodies
 * are packed into one ArrayBuffer per batch and large ones move by transfer, so a body is copied
 * at most once between the parser and the replay.
 *
 * The hand-off is bounded: requests posted and not yet submitted to the replay are counted in
 * shared memory, and past the bound a worker does not post the request but counts it, and the
 * main thread records it as `queue_full` for every destination, as a full replay queue would.
 */
import type { H2RequestInfo, HttpDropReason, HttpRequest } from '../http/types.js';
import type { FlowInfo } from '../reassemble/stream.js';

/** At most this many requests posted and not yet submitted to the replay, over all workers. */
export const HANDOFF_MAX_REQUESTS = 16_384;
/** At most this many body bytes likewise (a single larger body passes when the hand-off is below it). */
export const HANDOFF_MAX_BYTES = 64 * 1024 * 1024;
/** A batch is posted at the next turn of the worker's event loop, or at this many requests. */
const BATCH_MAX_REQUESTS = 512;
/** Bodies at least this large, owning their whole ArrayBuffer, are transferred instead of packed. */
const TRANSFER_MIN_BYTES = 64 * 1024;

/** One request on the wire between threads; `b` indexes `Batch.bodies` (-1: empty body). */
interface WireRequest {
  m: string;
  t: string;
  a: string | undefined;
  /** HTTP/2 requests only: without it the main thread would take the request for HTTP/1.x. */
  x?: H2RequestInfo;
  v: number;
  h: string[];
  c: boolean;
  tr: string[];
  b: number;
  o: number;
  l: number;
  f: FlowInfo;
}

export interface Batch {
  type: 'batch';
  reqs: WireRequest[];
  /** [0] holds the packed small bodies; the rest are transferred large bodies. */
  bodies: ArrayBuffer[];
  /** Parser drops: reason, requests, skipped bytes. */
  drops: Array<[HttpDropReason, number, number]>;
  /** Requests not posted because the hand-off was full. */
  overflow: number;
}

/** The shared counters of the bound: [requests, body bytes] posted and not yet submitted. */
export function handoffBudget(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(8));
}

/** The worker's side: collects requests and drops, and posts them as batches. */
export class HandoffWriter {
  private reqs: WireRequest[] = [];
  private small: Buffer[] = [];
  private smallBytes = 0;
  private large: ArrayBuffer[] = [];
  private drops = new Map<HttpDropReason, [number, number]>();
  private overflow = 0;
  private scheduled = false;

  constructor(
    private readonly post: (b: Batch, transfer: ArrayBuffer[]) => void,
    private readonly budget: Int32Array,
  ) {}

  request(req: HttpRequest, flow: FlowInfo): void {
    const len = req.body.length;
    if (Atomics.load(this.budget, 0) >= HANDOFF_MAX_REQUESTS || Atomics.load(this.budget, 1) >= HANDOFF_MAX_BYTES) {
      this.overflow++;
      this.schedule();
      return;
    }
    Atomics.add(this.budget, 0, 1);
    Atomics.add(this.budget, 1, len);
    let b = -1;
    let o = 0;
    if (len >= TRANSFER_MIN_BYTES && req.body.byteOffset === 0 && req.body.buffer.byteLength === len && !(req.body.buffer instanceof SharedArrayBuffer)) {
      this.large.push(req.body.buffer as ArrayBuffer);
      b = this.large.length; // bodies[0] is the pack
    } else if (len > 0) {
      b = 0;
      o = this.smallBytes;
      this.small.push(req.body);
      this.smallBytes += len;
    }
    const w: WireRequest = { m: req.method, t: req.target, a: req.authority, v: req.minorVersion, h: req.headers, c: req.chunked, tr: req.trailers, b, o, l: len, f: flow };
    if (req.h2) w.x = req.h2;
    this.reqs.push(w);
    if (this.reqs.length >= BATCH_MAX_REQUESTS) this.flush();
    else this.schedule();
  }

  dropped(reason: HttpDropReason, requests: number, skippedBytes: number): void {
    const d = this.drops.get(reason);
    if (d) {
      d[0] += requests;
      d[1] += skippedBytes;
    } else this.drops.set(reason, [requests, skippedBytes]);
    this.schedule();
  }

  /** Posts what is collected; the worker calls it before it reports a ring ended. */
  flush(): void {
    if (this.reqs.length === 0 && this.drops.size === 0 && this.overflow === 0) return;
    const pack = new ArrayBuffer(this.smallBytes);
    const view = new Uint8Array(pack);
    let at = 0;
    for (const s of this.small) {
      view.set(s, at);
      at += s.length;
    }
    const bodies = [pack, ...this.large];
    const batch: Batch = { type: 'batch', reqs: this.reqs, bodies, drops: [...this.drops].map(([r, [n, b]]) => [r, n, b]), overflow: this.overflow };
    this.reqs = [];
    this.small = [];
    this.smallBytes = 0;
    this.large = [];
    this.drops = new Map();
    this.overflow = 0;
    this.post(batch, bodies);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }
}

export interface HandoffSink {
  request(req: HttpRequest, flow: FlowInfo): void;
  dropped(reason: HttpDropReason, requests: number, skippedBytes: number): void;
  /** Requests lost because the hand-off was full. */
  overflow(requests: number): void;
}

/** The main thread's side: turns a batch back into requests and frees its share of the bound. */
export function readBatch(batch: Batch, sink: HandoffSink, budget: Int32Array): void {
  try {
    for (const [reason, requests, skipped] of batch.drops) sink.dropped(reason, requests, skipped);
    if (batch.overflow > 0) sink.overflow(batch.overflow);
    for (const w of batch.reqs) {
      const body = w.b < 0 ? EMPTY : Buffer.from(batch.bodies[w.b], w.o, w.l);
      const req: HttpRequest = { method: w.m, target: w.t, minorVersion: w.v, headers: w.h, body, chunked: w.c, trailers: w.tr };
      if (w.a !== undefined) req.authority = w.a;
      if (w.x !== undefined) req.h2 = w.x;
      sink.request(req, w.f);
    }
  } finally {
    let bytes = 0;
    for (const w of batch.reqs) bytes += w.l;
    Atomics.sub(budget, 0, batch.reqs.length);
    Atomics.sub(budget, 1, bytes);
  }
}

const EMPTY = Buffer.alloc(0);
