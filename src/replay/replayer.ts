import type { HttpRequest } from '../http/types.js';
import { copyHeaders, parseCopyMarker, type CopyMarker } from './amplify.js';
import type { RequestFlow } from './flow.js';
import { Destination, type AnswerSink, type DestinationOptions } from './destination.js';
import { buildFilter, NO_FILTERS, type FilterOptions } from './filters.js';
import { forwardHeaders, h2Authority } from './forward.js';
import { loopGuard, parseMarker, type Marker } from './loop.js';
import type { DropReason, ReplayObserver } from './outcome.js';
import { buildRateCaps, GLOBAL_RULE, parseRouteRates } from './ratelimit.js';
import { buildRewriter, NO_REWRITES, type Rewriter, type RewriteOptions } from './rewrite.js';
import { sendCounter, type SamplingOptions } from './sampling.js';

/** What SIGHUP can change: everything but the destinations and their limits. */
export interface PolicyOptions {
  keepHost: boolean;
  sampling: SamplingOptions;
  /** Requests per second after filtering and sampling; 0 = no cap. */
  rate: number;
  /** --route-rate 'N:regex' caps, first match applies (besides `rate`). */
  routeRates?: string[];
  /** --copy-header NAME: marks amplification copies 1, 2, …; the original carries nothing added. */
  copyHeader?: string;
  filters: FilterOptions;
  rewrites: RewriteOptions;
  /** --mark-header: 'Name' or 'Name: value'. */
  markHeader?: string;
}

export interface ReplayOptions extends DestinationOptions, PolicyOptions {
  destinations: string[];
  /** Resolved addresses of each destination, for the loop guard (same order as destinations). */
  destinationAddresses?: string[][];
}

type Admit = (req: HttpRequest, flow: RequestFlow) => DropReason | null;

/** The rate caps' labels for `p`: the bounded label set of mirror_replay_rate_limited_total{rule}. */
export function rateRuleLabels(p: Pick<PolicyOptions, 'rate' | 'routeRates'>): string[] {
  return [...parseRouteRates(p.routeRates ?? []).map((r) => r.label), ...(p.rate > 0 ? [GLOBAL_RULE] : [])];
}

/**
 * The policy chain, in the order it runs: loop guard, filters, sampling and amplification (how
 * many sends: 0 drops it), then per send the rate caps (each may drop, with its own reason), the
 * rewrites, and per destination the forwarded headers (for HTTP/2 also :authority), the marker
 * headers and the bounded queue.
 * Copies are requests like any other from the rate caps on. Every step is compiled once, at
 * startup or on reload.
 */
export class Replayer {
  readonly destinations: Destination[];
  private admit!: Admit;
  private sends!: (req: HttpRequest, flow: RequestFlow) => number;
  private caps: ((req: HttpRequest) => string | null) | null = null;
  private rewriter: Rewriter | null = null;
  private marker: Marker | null = null;
  private copyMarker: CopyMarker | null = null;
  private keepHost = false;

  constructor(private readonly opts: ReplayOptions, private readonly obs: ReplayObserver, private readonly onLoop: (flow: RequestFlow) => void = () => {}) {
    this.destinations = opts.destinations.map((d) => new Destination(d, opts, obs));
    this.reconfigure(opts);
  }

  /** Builds the chain from new options; throws ConfigError and keeps the old chain on a bad one. */
  reconfigure(p: PolicyOptions): void {
    const marker = parseMarker(p.markHeader);
    const guard = loopGuard(
      marker,
      this.destinations.map((d, i) => ({ addresses: this.opts.destinationAddresses?.[i] ?? [d.url.hostname.replace(/^\[|\]$/g, '')], port: Number(d.url.port || (d.url.protocol === 'https:' ? 443 : 80)) })),
      this.onLoop,
    );
    const filter = buildFilter(p.filters ?? NO_FILTERS);
    const sends = sendCounter(p.sampling);
    const caps = buildRateCaps(p.rate, parseRouteRates(p.routeRates ?? []));
    const copyMarker = parseCopyMarker(p.copyHeader);
    const rewriter = buildRewriter(p.rewrites ?? NO_REWRITES);
    const steps: Admit[] = [
      (req, flow) => (guard(req, flow) ? 'loop' : null),
      ...(filter ? [(req: HttpRequest) => (filter(req) ? null : ('filtered' as const))] : []),
    ];
    this.admit = (req, flow) => {
      for (const step of steps) {
        const r = step(req, flow);
        if (r) return r;
      }
      return null;
    };
    this.sends = sends;
    this.caps = caps;
    this.copyMarker = copyMarker;
    this.rewriter = rewriter;
    this.marker = marker;
    this.keepHost = p.keepHost;
  }

  /**
   * Called for every complete request; never waits. `answers` (shadow testing): one per
   * destination, in order, told its answer; only the original is compared, never a copy.
   * Returns false when the policy left the original out.
   */
  submit(req: HttpRequest, flow: RequestFlow, answers?: AnswerSink[]): boolean {
    const reason = this.admit(req, flow);
    if (reason) {
      this.obs.dropped(reason);
      return false;
    }
    const n = this.sends(req, flow);
    if (n === 0) {
      this.obs.dropped('sampled_out');
      return false;
    }
    if (n > 1) this.obs.copied?.(n - 1);
    const rw = this.rewriter;
    const target = rw ? rw.target(req.target) : req.target;
    const base = rw ? rw.headers(req.headers) : req.headers;
    const src = base === req.headers ? req : { ...req, headers: base };
    let kept = false;
    for (let k = 0; k < n; k++) {
      const capped = this.caps?.(req) ?? null;
      if (capped !== null) {
        this.obs.dropped('rate_limited');
        this.obs.rateLimited?.(capped);
        continue;
      }
      if (k === 0) kept = true;
      this.send(req, flow, src, target, k, k === 0 ? answers : undefined);
    }
    return kept;
  }

  /** Send `k` (0: the original, k ≥ 1: copy k) to every destination. */
  private send(req: HttpRequest, flow: RequestFlow, src: HttpRequest, target: string, k: number, answers: AnswerSink[] | undefined): void {
    for (let i = 0; i < this.destinations.length; i++) {
      const d = this.destinations[i];
      const fo = { keepHost: this.keepHost, destinationHost: d.hostHeader };
      let headers = forwardHeaders(src, flow, fo);
      // HTTP/2's :authority plays Host's part; a mismatching protocol is counted by the destination.
      const h2 = req.h2 ? { authority: h2Authority(req, headers, fo) } : undefined;
      if (this.marker) headers.push(this.marker.name, this.marker.value);
      if (k > 0 && this.copyMarker) headers = copyHeaders(headers, this.copyMarker, k);
      d.enqueue({ method: req.method, target, headers, body: req.body, chunked: req.chunked, trailers: req.trailers, minorVersion: req.minorVersion, answer: answers?.[i], h2 });
    }
  }

  get queueDepth(): number {
    let n = 0;
    for (const d of this.destinations) n += d.queueDepth;
    return n;
  }

  async drain(ms: number): Promise<void> {
    await Promise.all(this.destinations.map((d) => d.drain(ms)));
  }
}
