import type { HttpRequest } from '../http/types.js';
import type { FlowInfo } from '../reassemble/stream.js';
import { Destination, type DestinationOptions } from './destination.js';
import { forwardHeaders } from './forward.js';
import type { ReplayObserver } from './outcome.js';
import { sampler, type SamplingOptions } from './sampling.js';

export interface ReplayOptions extends DestinationOptions {
  destinations: string[];
  keepHost: boolean;
  sampling: SamplingOptions;
}

/**
 * The policy chain, in order: sampling, then per destination header forwarding and the bounded
 * queue. Each step is a plain function built once at startup.
 */
export class Replayer {
  readonly destinations: Destination[];
  private readonly keep: (req: HttpRequest, flow: FlowInfo) => boolean;

  constructor(private readonly opts: ReplayOptions, private readonly obs: ReplayObserver) {
    this.destinations = opts.destinations.map((d) => new Destination(d, opts, obs));
    this.keep = sampler(opts.sampling);
  }

  /** Called for every complete request; never waits. */
  submit(req: HttpRequest, flow: FlowInfo): void {
    if (!this.keep(req, flow)) {
      this.obs.dropped('sampled_out');
      return;
    }
    for (const d of this.destinations) {
      d.enqueue({
        method: req.method,
        target: req.target,
        headers: forwardHeaders(req, flow, { keepHost: this.opts.keepHost, destinationHost: d.hostHeader }),
        body: req.body,
        chunked: req.chunked,
        trailers: req.trailers,
        minorVersion: req.minorVersion,
      });
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
