/**
 * --rate N: a token bucket holding at most one second of requests, refilled continuously.
 * `now` is injected so tests need no clock.
 */
export function rateLimiter(perSecond: number, now: () => number = () => performance.now()): () => boolean {
  let tokens = perSecond;
  let last = now();
  return () => {
    const t = now();
    tokens = Math.min(perSecond, tokens + ((t - last) * perSecond) / 1000);
    last = t;
    if (tokens >= 1) {
      tokens -= 1;
      return true;
    }
    return false;
  };
}
