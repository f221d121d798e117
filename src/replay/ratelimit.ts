import { ConfigError } from '../errors.js';
import type { HttpRequest } from '../http/types.js';
import { compileRegex } from './filters.js';

/** A token bucket holding at most one second of requests, refilled continuously. */
interface Bucket {
  /** Refills, then whether a token is there (without taking it). */
  ready(): boolean;
  take(): void;
}

function bucket(perSecond: number, now: () => number): Bucket {
  let tokens = perSecond;
  let last = now();
  return {
    ready() {
      const t = now();
      tokens = Math.min(perSecond, tokens + ((t - last) * perSecond) / 1000);
      last = t;
      return tokens >= 1;
    },
    take() {
      tokens -= 1;
    },
  };
}

/**
 * --rate N: a token bucket holding at most one second of requests, refilled continuously.
 * `now` is injected so tests need no clock.
 */
export function rateLimiter(perSecond: number, now: () => number = () => performance.now()): () => boolean {
  const b = bucket(perSecond, now);
  return () => {
    if (!b.ready()) return false;
    b.take();
    return true;
  };
}

/** The label of the --rate cap in mirror_replay_rate_limited_total{rule}. */
export const GLOBAL_RULE = 'global';

/** One --route-rate 'N:regex' rule; `label` (the regex as written) names it in the metrics. */
export interface RouteRate {
  label: string;
  re: RegExp;
  perSecond: number;
}

/** --route-rate 'N:regex': at most N requests per second whose target matches regex. Throws ConfigError. */
export function parseRouteRate(s: string): RouteRate {
  const i = s.indexOf(':');
  const n = i > 0 ? Number(s.slice(0, i).trim()) : NaN;
  if (!(Number.isFinite(n) && n > 0 && n <= 10_000_000)) throw new ConfigError(`--route-rate ${JSON.stringify(s)} must be 'N:regex' with N requests per second from 0.001 to 10000000, e.g. '50:^/api/search'`);
  const src = s.slice(i + 1);
  if (!src) throw new ConfigError(`--route-rate ${JSON.stringify(s)}: the regex after ':' is empty`);
  return { label: src, re: compileRegex('route-rate', src), perSecond: n };
}

/** Every rule parsed, each regex given once; the labels are the bounded label set of the metric. */
export function parseRouteRates(specs: readonly string[]): RouteRate[] {
  const rules = specs.map(parseRouteRate);
  const seen = new Set<string>();
  for (const r of rules) {
    if (r.label === GLOBAL_RULE) throw new ConfigError(`--route-rate: ${JSON.stringify(GLOBAL_RULE)} names the --rate cap in the metrics; write the regex another way, e.g. '(?:global)'`);
    if (seen.has(r.label)) throw new ConfigError(`--route-rate: the regex ${JSON.stringify(r.label)} is given twice`);
    seen.add(r.label);
  }
  return rules;
}

/**
 * The rate caps as one step: the first --route-rate rule whose regex matches the target (as
 * production sent it, before rewrites), then --rate over everything. A request takes a token
 * only when every cap that applies to it has one, so a request one cap drops does not use up
 * another's. Returns the label of the cap that dropped it, or null; null when no cap is set.
 */
export function buildRateCaps(globalPerSecond: number, routes: readonly RouteRate[], now: () => number = () => performance.now()): ((req: HttpRequest) => string | null) | null {
  const global = globalPerSecond > 0 ? bucket(globalPerSecond, now) : null;
  const rules = routes.map((r) => ({ label: r.label, re: r.re, b: bucket(r.perSecond, now) }));
  if (!global && !rules.length) return null;
  return (req) => {
    const rule = rules.length ? rules.find((r) => r.re.test(req.target)) : undefined;
    if (rule && !rule.b.ready()) return rule.label;
    if (global && !global.ready()) return GLOBAL_RULE;
    rule?.b.take();
    global?.take();
    return null;
  };
}
