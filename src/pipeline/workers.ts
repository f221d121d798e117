/**
 * Capture spread over worker threads (--workers N): per interface, N rings in one PACKET_FANOUT
 * hash group, so each flow stays on one worker, each worker running the same Stages as the main
 * thread would on its own flows (capture-worker.ts). Requests come back here, to the main thread's
 * one Replayer, so --max-concurrency and the queues keep their meaning; counters come back every
 * sweep and are summed, so Prometheus sees one endpoint.
 *
 * Each worker is a capture loop to the daemon: it ends when its ring has ended and everything it
 * parsed has been handed over; its counters and progress are its last report, so a worker whose
 * thread is stuck stops making progress in /healthz like a stuck capture loop.
 */
import { Worker } from 'node:worker_threads';
import { ringShareMiB } from '../capture/ring.js';
import { captureByInterface, zeroCaptureStats, type CaptureStats } from '../capture/source.js';
import { ANOMALIES, SKIPS } from '../decode/anomalies.js';
import { CaptureError } from '../errors.js';
import { REASSEMBLY_EVENTS } from '../reassemble/table.js';
import { handoffBudget, readBatch, type HandoffSink } from './handoff.js';
import { toError, type CaptureWorkerSetup, type WorkerMessage, type WorkerStats } from './messages.js';
import type { Capture, CaptureFault, CaptureLoop, CaptureProbe, StageCounters, StageOptions } from './stages.js';

const WORKER_SCRIPT = new URL('./capture-worker.js', import.meta.url);

export interface CaptureWorkersOptions {
  interfaces: string[];
  /** Workers per interface. */
  workers: number;
  /** Ring per interface, shared out among its workers. */
  ring: { ringMiB: number; blockKiB: number; retireMs: number };
  /** Decode through parsing; memcapBytes is shared out among all workers. */
  stages: StageOptions;
  /** Told of the exceptions the workers' rings caught (each worker rate-limits its own). */
  onFault?: (f: CaptureFault) => void;
}

const ZERO: CaptureStats = zeroCaptureStats();

/** One worker thread and its ring, a capture loop to the daemon. */
export class WorkerLoop implements CaptureLoop {
  last: WorkerStats | null = null;
  /** The fanout group its ring joined (-1 until bound, or if it failed). */
  fanout = -1;
  worker: Worker | null = null;
  stopped = false;
  private settled = false;
  private resolveBound!: () => void;
  readonly bound = new Promise<void>((r) => (this.resolveBound = r));
  private resolveEnded!: () => void;
  private rejectEnded!: (e: Error) => void;
  /** Resolves when the worker has ended and handed everything over; rejects with why it failed. */
  readonly ended = new Promise<void>((res, rej) => {
    this.resolveEnded = res;
    this.rejectEnded = rej;
  });

  constructor(
    readonly name: string,
    readonly index: number,
  ) {
    this.ended.catch(() => {}); // observed through CaptureWorkers.run()
  }

  stop(): void {
    this.stopped = true;
    this.worker?.postMessage({ type: 'stop' });
    if (!this.worker) this.end();
  }

  stats(): CaptureStats {
    return this.last?.capture ?? ZERO;
  }

  progress(): number {
    return this.last?.progress ?? 0;
  }

  /** Ends the loop: resolved, or rejected with `err`. */
  end(err?: Error): void {
    this.resolveBound();
    if (this.settled) return;
    this.settled = true;
    if (err) this.rejectEnded(err);
    else this.resolveEnded();
  }

  markBound(fanout: number): void {
    this.fanout = fanout;
    this.resolveBound();
  }
}

export class CaptureWorkers implements Capture {
  readonly loops: WorkerLoop[];
  readonly workers: number;
  private readonly budget = handoffBudget();
  private failed = false;

  constructor(
    private readonly opts: CaptureWorkersOptions,
    private readonly sink: HandoffSink,
  ) {
    this.workers = opts.workers;
    this.loops = opts.interfaces.flatMap((iface) => Array.from({ length: opts.workers }, (_, i) => new WorkerLoop(iface, i)));
  }

  /** The stage counters summed over the workers' last reports. */
  readonly probe: CaptureProbe = {
    capture: () => captureByInterface(this.loops),
    decodeAnomalies: () => this.sumArrays(ANOMALIES.length, (s) => s.anomalies),
    decodeSkips: () => this.sumArrays(SKIPS.length, (s) => s.skips),
    reassemblyEvents: () => this.sumArrays(REASSEMBLY_EVENTS.length, (s) => s.events),
    flowsOpen: () => this.sum((s) => s.openFlows),
    reassemblyHeldBytes: () => this.sum((s) => s.heldBytes),
    httpBufferedBytes: () => this.sum((s) => s.sinkBytes),
  };

  /** Per interface, the first worker creates the fanout group; the others join it once it is bound. */
  run(): Promise<Array<Error | null>> {
    for (const iface of this.opts.interfaces) {
      const [first, ...rest] = this.loops.filter((s) => s.name === iface);
      this.spawn(first, 'new');
      void first.bound.then(() => {
        for (const s of rest) {
          if (s.stopped) s.end();
          else if (first.fanout < 0) s.end(new CaptureError(`capture worker ${s.index} on ${iface} not started: worker 0 could not open its ring`));
          else this.spawn(s, first.fanout);
        }
      });
    }
    return Promise.all(
      this.loops.map((s) =>
        s.ended.then(
          () => null,
          (e: Error) => {
            this.failed = true;
            return e;
          },
        ),
      ),
    );
  }

  /** Workers say so once their rings are bound; one more turn lets a failure that followed be seen. */
  async bound(): Promise<boolean> {
    await Promise.all(this.loops.map((s) => s.bound));
    await new Promise((r) => setImmediate(r));
    return !this.failed;
  }

  stop(): void {
    for (const s of this.loops) s.stop();
  }

  /** The workers closed their flows before they ended. */
  close(): void {}

  private sum(f: (s: StageCounters) => number): number {
    let n = 0;
    for (const s of this.loops) if (s.last) n += f(s.last.stages);
    return n;
  }

  private sumArrays(length: number, f: (s: StageCounters) => Float64Array): Float64Array {
    const out = new Float64Array(length);
    for (const s of this.loops) {
      if (!s.last) continue;
      const a = f(s.last.stages);
      for (let i = 0; i < length; i++) out[i] += a[i];
    }
    return out;
  }

  private spawn(s: WorkerLoop, fanout: number | 'new'): void {
    if (s.stopped) {
      s.end();
      return;
    }
    const o = this.opts;
    const threads = o.interfaces.length * o.workers;
    const table = o.stages.table;
    const setup: CaptureWorkerSetup = {
      interface: s.name,
      fanout,
      ring: { ...o.ring, ringMiB: ringShareMiB(o.ring.ringMiB, o.workers, o.ring.blockKiB) },
      stages: { ...o.stages, table: table.memcapBytes === undefined ? table : { ...table, memcapBytes: Math.floor(table.memcapBytes / threads) } },
      budget: this.budget,
    };
    const w = new Worker(WORKER_SCRIPT, { workerData: setup, name: `capture ${s.name}#${s.index}` });
    s.worker = w;
    w.on('message', (m: WorkerMessage) => this.received(s, m));
    w.on('error', (e) => s.end(new CaptureError(`capture worker ${s.index} on ${s.name} failed: ${e.message}`, undefined, { cause: e })));
    w.on('exit', (code) => s.end(code === 0 ? undefined : new CaptureError(`capture worker ${s.index} on ${s.name} exited with code ${code}`)));
    // Stopped while it was starting: it still gets the message once its port is up.
    if (s.stopped) w.postMessage({ type: 'stop' });
  }

  private received(s: WorkerLoop, m: WorkerMessage): void {
    switch (m.type) {
      case 'batch':
        readBatch(m, this.sink, this.budget);
        break;
      case 'stats':
        s.last = m;
        break;
      case 'fault':
        this.opts.onFault?.({ interface: s.name, kind: m.kind, error: toError(m.error), suppressed: m.suppressed });
        break;
      case 'bound':
        s.markBound(m.fanout);
        break;
      case 'ended':
        s.end(m.error ? toError(m.error) : undefined);
        break;
    }
  }
}
