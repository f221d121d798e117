/**
 * Fragments made by the Linux kernel, not by our own frame builder: a raw socket in one namespace
 * sends TCP segments larger than the veth MTU with path MTU discovery off, so the kernel's IPv4
 * and IPv6 output paths cut them; the real ring in the other namespace captures the fragments
 * (its BPF filter must let them through) and the Decoder must put each segment back together.
 * Needs root: skipped otherwise, except in CI (CI=true), where skipping would hide a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { lineFrom } from '../fixtures/child.js';
import { payloadOf, sha } from './fragments-child.js';

const CHILD = fileURLToPath(new URL('./fragments-child.js', import.meta.url));
const PORT = 8080;
const MTU = 1280;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Lab {
  a: string;
  b: string;
  v4: [string, string];
  v6: [string, string];
}

function labUp(): Lab {
  const lab: Lab = {
    a: `mr-frag-${process.pid}-a`,
    b: `mr-frag-${process.pid}-b`,
    v4: [`10.214.${process.pid % 256}.1`, `10.214.${process.pid % 256}.2`],
    v6: ['fd00:214::1', 'fd00:214::2'],
  };
  labDown(lab);
  ip('netns', 'add', lab.a);
  ip('netns', 'add', lab.b);
  ip('-n', lab.a, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', lab.b);
  for (const [ns, dev, i] of [[lab.a, 'va', 0], [lab.b, 'vb', 1]] as const) {
    ip('-n', ns, 'link', 'set', dev, 'mtu', String(MTU), 'up');
    ip('-n', ns, 'addr', 'add', `${lab.v4[i]}/30`, 'dev', dev);
    ip('-n', ns, 'addr', 'add', `${lab.v6[i]}/64`, 'dev', dev, 'nodad');
  }
  return lab;
}

function labDown(lab: Lab): void {
  for (const ns of [lab.a, lab.b]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // not there
    }
  }
}

function killIfRunning(child: ChildProcessWithoutNullStreams | undefined): void {
  if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
}

test('kernel-made IPv4 and IPv6 fragments of TCP segments come out of the ring and Decoder whole', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') assert.fail('needs root (network namespaces); CI must run it as root');
    t.skip('needs root for network namespaces');
    return;
  }
  let lab: Lab | undefined;
  let capture: ChildProcessWithoutNullStreams | undefined;
  try {
    lab = labUp();
    capture = spawn('ip', ['netns', 'exec', lab.b, process.execPath, CHILD, 'capture', 'vb', String(PORT)]);
    await lineFrom(capture, (l) => l === 'READY', 15_000);
    const result = lineFrom(capture, (l) => l.startsWith('{'), 40_000);
    const sizes = { v4: 3000, v6: 5000 };
    for (const [src, dst, size] of [[...lab.v4, sizes.v4], [...lab.v6, sizes.v6]] as const) {
      const out = execFileSync('ip', ['netns', 'exec', lab.a, process.execPath, CHILD, 'send', src, dst, String(PORT), String(size)], { encoding: 'utf8', timeout: 15_000 });
      assert.match(out, /"sent"/);
    }
    await new Promise((r) => setTimeout(r, 300)); // blocks retire after 10 ms
    capture.stdin.write('stop\n');
    const got = JSON.parse(await result) as {
      packets: Array<{ v: number; seq: number; length: number; sha: string }>;
      reassembled: number;
      anomalies: Record<string, number>;
      skips: Record<string, number>;
      frames: number;
    };
    t.diagnostic(`${got.frames} frames captured; skips ${JSON.stringify(got.skips)}`);
    const mine = got.packets.filter((p) => p.seq === 7777);
    assert.deepEqual(
      mine.map(({ v, length, sha: h }) => ({ v, length, sha: h })),
      [
        { v: 4, length: sizes.v4, sha: sha(payloadOf(sizes.v4)) },
        { v: 6, length: sizes.v6, sha: sha(payloadOf(sizes.v6)) },
      ],
    );
    assert.equal(got.reassembled, 2);
    // 3020 TCP bytes in 1256-byte IPv4 fragments: 3; 5020 in 1232-byte IPv6 fragments: 5.
    assert.equal(got.skips.fragment_held, 2 + 4);
    assert.deepEqual(got.anomalies, {});
  } finally {
    killIfRunning(capture);
    if (lab) labDown(lab);
  }
});
