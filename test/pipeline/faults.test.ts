/**
 * A bug in a stage must not stop capture, and must not be invisible: on the real ring in a pair of
 * network namespaces, a replay sink that throws on every request (as a bug in a stage would) is
 * counted in mirror_replay_capture_errors_total{kind="handler"} once per request, reported (rate
 * limited) with what was thrown, and capture carries on. Needs root: skipped otherwise, except in CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { lineFrom } from '../fixtures/child.js';

const CHILD = fileURLToPath(new URL('./faults-child.js', import.meta.url));
const PORT = 8080;
const REQUESTS = 3;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

function nsDown(names: string[]): void {
  for (const ns of names) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // not there
    }
  }
}

function series(text: string, kind: string): number | undefined {
  const m = new RegExp(`^mirror_replay_capture_errors_total\\{interface="va",kind="${kind}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

test('a stage that throws on every request: counted as kind="handler" in /metrics, reported with what it threw, capture carries on', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') assert.fail('this test needs root (network namespaces); CI must run it as root');
    t.skip('needs root for network namespaces');
    return;
  }
  const a = `mr-flt-${process.pid}-a`;
  const b = `mr-flt-${process.pid}-b`;
  const net = `10.214.${process.pid % 256}`;
  let child: ChildProcessWithoutNullStreams | undefined;
  nsDown([a, b]);
  try {
    ip('netns', 'add', a);
    ip('netns', 'add', b);
    ip('-n', a, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', b);
    ip('-n', a, 'link', 'set', 'va', 'up');
    ip('-n', b, 'link', 'set', 'vb', 'up');
    ip('-n', a, 'addr', 'add', `${net}.1/30`, 'dev', 'va');
    ip('-n', b, 'addr', 'add', `${net}.2/30`, 'dev', 'vb');
    child = spawn('ip', ['netns', 'exec', a, process.execPath, CHILD, 'capture', 'va', String(PORT)]);
    await lineFrom(child, (l) => l === 'READY', 15_000);
    const result = lineFrom(child, (l) => l.startsWith('{'), 40_000);
    // curl, one connection per request: each request is complete in its own flow.
    for (let i = 0; i < REQUESTS; i++) {
      assert.equal(execFileSync('ip', ['netns', 'exec', b, 'curl', '-s', '-m', '5', `http://${net}.1:${PORT}/r${i}`], { encoding: 'utf8', timeout: 10_000 }), 'ok');
    }
    await new Promise((r) => setTimeout(r, 300)); // blocks retire after 10 ms
    child.stdin.write('stop\n');
    const out = JSON.parse(await result);
    t.diagnostic(`thrown ${out.thrown}, handlerErrors ${out.handlerErrors}, faults ${JSON.stringify(out.faults)}`);

    assert.deepEqual(out.runs, ['ok'], 'capture carried on and ended cleanly');
    assert.equal(series(out.before, 'handler'), 0, 'kind="handler" is at 0 before anything threw');
    assert.equal(out.thrown, REQUESTS, 'every request reached the throwing stage: capture carried on after each throw');
    assert.equal(out.handlerErrors, REQUESTS);
    assert.equal(series(out.after, 'handler'), REQUESTS, 'each exception is in mirror_replay_capture_errors_total{kind="handler"}');
    for (const kind of ['loss_handler', 'bad_block', 'kernel_freeze', 'poll']) assert.equal(series(out.after, kind), 0, kind);
    // Rate-limited: the first is reported with what was thrown; the rest of the interval is suppressed.
    assert.deepEqual(out.faults, [{ interface: 'va', kind: 'handler', message: 'replay bug #1', suppressed: 0 }]);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    nsDown([a, b]);
  }
});
