/** TCP sequence arithmetic modulo 2^32 (RFC 793 §3.3). */

/** Signed distance a - b, correct across wraparound while |a - b| < 2^31. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

export function seqLT(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLE(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
