import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureClock, type FrameSource } from '../../src/capture/source.js';

function source(backlog: number | null | undefined): FrameSource {
  const s: FrameSource = {
    name: 'x',
    run: async () => {},
    stop: () => {},
    stats: () => ({ packets: 0, bytes: 0, kernelDrops: 0, kernelFreezes: 0, truncated: 0 }),
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
