/**
 * Whether the daemon is alive and ready, judged from its capture loops' progress. /healthz,
 * /readyz, the NLB health-check port and the systemd watchdog all ask here. Progress is tracked
 * per loop, so one stuck loop among several interfaces (or workers) is noticed.
 */
import type { FrameSource } from '../capture/source.js';

/** A capture loop that has not polled or walked a block for this long is stuck. */
export const STALE_MS = 5_000;

export interface HealthState {
  ok: boolean;
  detail: string;
}

type Loop = Pick<FrameSource, 'name' | 'progress'>;

export class Health {
  /** Capture is bound (set by the daemon once it is). */
  ready = false;
  /** Stopping: draining, no longer ready. */
  stopping = false;
  private readonly lastProgress: number[];
  private readonly lastProgressAt: number[];

  constructor(
    private readonly loops: readonly Loop[],
    private readonly staleMs = STALE_MS,
    private readonly clock: () => number = Date.now,
  ) {
    this.lastProgress = loops.map((l) => l.progress());
    this.lastProgressAt = loops.map(() => clock());
  }

  /** /readyz: capture bound, every loop making progress, not stopping. */
  readonly readiness = (): HealthState => {
    const stuck = this.stuckLoop();
    if (this.stopping) return { ok: false, detail: 'stopping' };
    if (!this.ready) return { ok: false, detail: 'starting' };
    if (stuck !== null) return { ok: false, detail: `capture loop on ${stuck} is not making progress` };
    return { ok: true, detail: 'ok' };
  };

  /** /healthz: only a stuck capture loop is fatal; starting and draining are alive. */
  readonly liveness = (): HealthState => {
    const h = this.readiness();
    return h.ok || h.detail === 'starting' || h.detail === 'stopping' ? { ok: true, detail: h.detail } : h;
  };

  /** The first loop whose progress has not moved for staleMs, or null. */
  private stuckLoop(): string | null {
    const t = this.clock();
    let stuck: string | null = null;
    this.loops.forEach((l, i) => {
      const p = l.progress();
      if (p !== this.lastProgress[i]) {
        this.lastProgress[i] = p;
        this.lastProgressAt[i] = t;
      } else if (t - this.lastProgressAt[i] > this.staleMs) stuck ??= l.name;
    });
    return stuck;
  }
}
