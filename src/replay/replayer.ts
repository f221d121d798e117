import type { HttpRequest } from '../http/types.js';
import type { RequestFlow } from './flow.js';
import { Destination, type AnswerSink, type DestinationOptions } from './destination.js';
import { buildFilter, NO_FILTERS, type FilterOptions } from './filters.js';
import { forwardHeaders } from './forward.js';
import { loopGuard, parseMarker, type Marker } from './loop.js';
import type { DropReason, ReplayObserver } from './outcome.js';
import { rateLimiter } from './ratelimit.js';
import { buildRewriter, NO_REWRITES, type Rewriter, type RewriteOptions } from './rewrite.js';
import { sampler, type SamplingOptions } from './sampling.js';

/** What SIGHUP can change: everything but the destinations and their limits. */
export interface PolicyOptions {
  keepHost: boolean;
  sampling: SamplingOptions;
  /** Requests per second after filtering and sampling; 0 = no cap. */
  rate: number;
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

/**
 * The policy chain, in the order it runs: loop guard, filters, sampling, rate limit (each may
 * drop, with its own reason), then rewrites, then per destination the forwarded headers, the
 * marker header and the bounded queue. Every step is compiled once, at startup or on reload.
 */
export class Replayer {
  readonly destinations: Destination[];
  private admit!: Admit;
  private rewriter: Rewriter | null = null;
  private marker: Marker | null = null;
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
    const keep = sampler(p.sampling);
    const limit = p.rate > 0 ? rateLimiter(p.rate) : null;
    const rewriter = buildRewriter(p.rewrites ?? NO_REWRITES);
    const steps: Admit[] = [
      (req, flow) => (guard(req, flow) ? 'loop' : null),
      ...(filter ? [(req: HttpRequest) => (filter(req) ? null : ('filtered' as const))] : []),
      (req, flow) => (keep(req, flow) ? null : 'sampled_out'),
      ...(limit ? [() => (limit() ? null : ('rate_limited' as const))] : []),
    ];
    this.admit = (req, flow) => {
      for (const step of steps) {
        const r = step(req, flow);
        if (r) return r;
      }
      return null;
    };
    this.rewriter = rewriter;
    this.marker = marker;
    this.keepHost = p.keepHost;
  }

  /**
   * Called for every complete request; never waits. `answers` (shadow testing): one per
   * destination, in order, told its answer. Returns false when the policy left the request out.
   */
  submit(req: HttpRequest, flow: RequestFlow, answers?: AnswerSink[]): boolean {
    const reason = this.admit(req, flow);
    if (reason) {
      this.obs.dropped(reason);
      return false;
    }
    const rw = this.rewriter;
    const target = rw ? rw.target(req.target) : req.target;
    const base = rw ? rw.headers(req.headers) : req.headers;
    const src = base === req.headers ? req : { ...req, headers: base };
    for (let i = 0; i < this.destinations.length; i++) {
      const d = this.destinations[i];
      const headers = forwardHeaders(src, flow, { keepHost: this.keepHost, destinationHost: d.hostHeader });
      if (this.marker) headers.push(this.marker.name, this.marker.value);
      d.enqueue({ method: req.method, target, headers, body: req.body, chunked: req.chunked, trailers: req.trailers, minorVersion: req.minorVersion, answer: answers?.[i] });
    }
    return true;
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
