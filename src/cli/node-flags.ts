/**
 * How the daemon's Node.js is started: by the systemd unit (deploy/systemd/mirror-replay.service),
 * the bin's shebang (src/cli/main.ts) and the lab (scripts/lab/harness.ts). Tests hold all three to
 * these values.
 *
 * V8's defaults size the heap for a busy browser tab on a big machine: a 16 MiB semi-space (a
 * 32 MiB young generation, resident once touched) and, on a host of 16 GiB or more, an old
 * generation let grow to 4× what was live after the last full collection. The daemon keeps little
 * alive (flows, parsers, the replay queue: 10–20 MiB under connection churn) and makes a lot of
 * short-lived garbage; with the defaults its heap was 60–90 MiB at the churn peak, 2–3× the ring's
 * neighbours. A 1 MiB semi-space and a 512 MiB ceiling (which also caps the growth factor near
 * 1.4) hold it near 25 MiB for the same load (test/bench/README.md, memory). A bigger semi-space is
 * cheaper: 4 MiB costs 12% less CPU at 8k keep-alive requests/s, but 4–6 MiB more at the churn peak,
 * which the default keeps under 150 MB; operators can trade (README, memory).
 *
 * The ceiling is far above what the default bounds can keep alive (100,000 open flows and a full
 * replay queue: ~350 MiB); an operator raising --max-flows or --max-queue a lot, or comparing
 * (--compare keeps a second table), raises it too (README, memory).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--max-old-space-size=512'];

/** glibc makes a malloc arena per thread that allocates (8 here); two are plenty for Node's own allocations. */
export const NODE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
