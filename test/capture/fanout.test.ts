/**
 * PACKET_FANOUT hash mode, as --workers uses it: real TCP between a pair of network namespaces;
 * two rings in one group split the connections between them, every connection wholly on one ring,
 * every frame on exactly one; a ring in another group sees them all. Needs root: skipped
 * otherwise, except in CI (CI=true), where it fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { lineFrom } from '../fixtures/child.js';

const CHILD = fileURLToPath(new URL('./fanout-child.js', import.meta.url));
const PORT = 8080;
const CONNECTIONS = 64;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

function nsDel(ns: string): void {
  try {
    ip('netns', 'del', ns);
  } catch {
    // not there
  }
}

interface RingOut {
  fanoutId: number;
  /** Frames of the test's connections; `others` the rest the filter let through. */
  frames: number;
  others: number;
  flows: Record<string, number>;
  stats: { packets: number; kernelDrops: number };
}

test('fanout: two rings in one hash group split the connections, each wholly on one ring', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') assert.fail('fanout tests need root (network namespaces); CI must run them as root');
    t.skip('needs root for network namespaces');
    return;
  }
  const a = `mr-fan-${process.pid}-a`;
  const b = `mr-fan-${process.pid}-b`;
  const net = `10.214.${process.pid % 256}`;
  let capture: ChildProcessWithoutNullStreams | undefined;
  try {
    for (const ns of [a, b]) nsDel(ns);
    ip('netns', 'add', a);
    ip('netns', 'add', b);
    ip('-n', a, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', b);
    ip('-n', a, 'link', 'set', 'va', 'up');
    ip('-n', b, 'link', 'set', 'vb', 'up');
    ip('-n', a, 'addr', 'add', `${net}.1/30`, 'dev', 'va');
    ip('-n', b, 'addr', 'add', `${net}.2/30`, 'dev', 'vb');

    capture = spawn('ip', ['netns', 'exec', a, process.execPath, CHILD, 'capture', 'va', String(PORT)]);
    await lineFrom(capture, (l) => l === 'READY', 15_000);
    const result = lineFrom(capture, (l) => l.startsWith('{'), 40_000);
    execFileSync('ip', ['netns', 'exec', b, process.execPath, CHILD, 'client', `${net}.1`, String(PORT), String(CONNECTIONS)], { encoding: 'utf8', timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 300)); // blocks retire after 10 ms
    capture.stdin.write('stop\n');
    const out = JSON.parse(await result) as { runs: string[]; a: RingOut; b: RingOut; c: RingOut };

    const flowsA = Object.keys(out.a.flows);
    const flowsB = Object.keys(out.b.flows);
    t.diagnostic(`group ${out.a.fanoutId}: ring A ${flowsA.length} connections / ${out.a.frames} frames, ring B ${flowsB.length} / ${out.b.frames}; group ${out.c.fanoutId}: ${out.c.frames} frames; others A/B/C ${out.a.others}/${out.b.others}/${out.c.others}`);
    assert.deepEqual(out.runs, ['ok', 'ok', 'ok']);
    assert.ok(out.a.fanoutId >= 0);
    assert.equal(out.b.fanoutId, out.a.fanoutId, 'B joined the group A created');
    assert.notEqual(out.c.fanoutId, out.a.fanoutId, "'new' never reuses a group in use");
    assert.equal(Object.keys(out.c.flows).length, CONNECTIONS, 'the other group saw every connection');
    // Split: both members got connections (all 64 hashing to one member has odds of 2^-63).
    assert.ok(flowsA.length > 0 && flowsB.length > 0, `A ${flowsA.length}, B ${flowsB.length}`);
    assert.deepEqual(flowsA.filter((f) => flowsB.includes(f)), [], 'no connection on both rings');
    assert.deepEqual([...flowsA, ...flowsB].sort(), Object.keys(out.c.flows).sort());
    // Each connection wholly on its ring, and every frame on exactly one member.
    for (const f of flowsA) assert.equal(out.a.flows[f], out.c.flows[f], `connection ${f} split`);
    for (const f of flowsB) assert.equal(out.b.flows[f], out.c.flows[f], `connection ${f} split`);
    assert.equal(out.a.frames + out.b.frames, out.c.frames);
    for (const r of [out.a, out.b, out.c]) assert.equal(r.stats.kernelDrops, 0);
  } finally {
    if (capture && capture.exitCode === null && capture.pid !== undefined) process.kill(capture.pid, 'SIGKILL');
    for (const ns of [a, b]) nsDel(ns);
  }
});
