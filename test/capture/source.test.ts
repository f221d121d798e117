import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureByInterface, captureClock, zeroCaptureStats, type FrameSource } from '../../src/capture/source.js';

function source(backlog: number | null | undefined): FrameSource {
  const s: FrameSource = {
    name: 'x',
    run: async () => {},
    stop: () => {},
    stats: () => zeroCaptureStats(),
    progress: () => 0,
  };
  if (backlog !== undefined) s.backlogTime = () => backlog;
  return s;
}

test('captureClock: the wall clock while sources keep up; held back to the oldest backlog; never backwards', () => {
  const t0 = Date.now();
  const live = captureClock([source(undefined), source(null)], 0);
  assert.ok(live >= t0 && live <= Date.now(), 'no backlog (or a pcap source): the wall clock');
  // Two rings after a stall: reassembly time is where the one furthest behind has got to.
  assert.equal(captureClock([source(t0 - 3000), source(t0 - 5000), source(null)], 0), t0 - 5000);
  // A backlog of frames older than the time already used does not turn the clock back.
  assert.equal(captureClock([source(t0 - 5000)], t0 - 1000), t0 - 1000);
  // A backlog time in the future (a clock step) never runs ahead of the wall clock.
  const c = captureClock([source(t0 + 60_000)], 0);
  assert.ok(c <= Date.now());
});

test('captureByInterface: every counter, the error counters too, summed over the sources reading one interface', () => {
  const st = (n: number) => ({ ...zeroCaptureStats(), packets: n, handlerErrors: n, badBlocks: 2 * n, pollErrors: 1 });
  const src = (name: string, n: number) => ({ name, stats: () => st(n) });
  const out = captureByInterface([src('vxlan0', 1), src('vxlan0', 3), src('vxlan1', 5)]);
  assert.deepEqual(out, [
    { interface: 'vxlan0', ...zeroCaptureStats(), packets: 4, handlerErrors: 4, badBlocks: 8, pollErrors: 2 },
    { interface: 'vxlan1', ...zeroCaptureStats(), packets: 5, handlerErrors: 5, badBlocks: 10, pollErrors: 1 },
  ]);
});
