import { HTTP_DROP_REASONS } from '../http/types.js';

/**
 * Why a request that production received was not replayed. One label value each, all documented.
 * Replay-stage reasons (queue_full onwards) count once per destination that lost the request.
 */
export const REPLAY_DROP_REASONS = [
  /** Carries our --mark-header, or its server is one of our destinations: replaying would loop. */
  'loop',
  /** Left out by an --http-allow-... or --http-disallow-... filter: a choice, not a loss. */
  'filtered',
  /** --percentage sampling left it out: a choice, not a loss. */
  'sampled_out',
  /** Over --rate or a --route-rate cap (mirror_replay_rate_limited_total{rule} says which). */
  'rate_limited',
  /** The destination's queue was full: capture never waits for replay. */
  'queue_full',
  /** The body alone is larger than the destination's --max-queue-bytes: it could never be held. */
  'body_too_large',
  /** No answer within --timeout. */
  'timeout',
  /** The destination refused or could not be reached. */
  'connect_error',
  /** The connection failed after the request was sent (reset, protocol error). */
  'upstream_error',
  /** Still queued or in flight when the drain timeout ran out at shutdown. */
  'shutdown',
  /**
   * An --http-rewrite-url replacement made a target the request line cannot carry (a space, a CTL), or
   * an HTTP/2 request holds what HTTP/2 (or node:http2) cannot send: a connection-specific field, a
   * repeated single-value field, a CR/LF/NUL in a value (src/replay/h2-client.ts).
   */
  'invalid_for_replay',
  /**
   * The request's protocol is not the destination's (HTTP/1.x to an h2c/h2 destination, HTTP/2 to an
   * http/1.1 one): translating it would alter it, so that destination does not get it.
   */
  'protocol_mismatch',
] as const;

export const DROP_REASONS = [...HTTP_DROP_REASONS.filter((r) => r !== 'http_midstream_skipped'), ...REPLAY_DROP_REASONS] as const;
export type DropReason = (typeof DROP_REASONS)[number];
/** Reasons that a destination, not the capture or the policy, is responsible for. */
export const DESTINATION_DROP_REASONS = ['queue_full', 'body_too_large', 'timeout', 'connect_error', 'upstream_error', 'shutdown', 'invalid_for_replay', 'protocol_mismatch'] as const satisfies readonly DropReason[];

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/** How a stage tells the metrics what happened to a request. */
export interface ReplayObserver {
  dropped(reason: DropReason, count?: number, destination?: string): void;
  replayed(destination: string, status: number, seconds: number): void;
  /** A replay error by its code (ECONNREFUSED, MR_TIMEOUT, ...). */
  error(destination: string, code: string): void;
  /** A request whose framing we had to change (see README). */
  altered(what: 'empty_body_framing'): void;
  /** --percentage above 100 made `n` copies of a request (each then replayed or dropped as any request is). */
  copied?(n: number): void;
  /** A request sent again after its connection or stream failed unprocessed (it is then replayed or dropped once). */
  retried?(destination: string): void;
  /** A rate cap dropped a request (also counted as dropped 'rate_limited'): the rule's label, or 'global' for --rate. */
  rateLimited?(rule: string): void;
}
