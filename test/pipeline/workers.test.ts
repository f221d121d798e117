/**
 * Worker mode: what a capture worker reports reaches the main thread's metrics and log. The fault
 * counters travel in the stats message (they are CaptureStats), the exception in a fault message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { zeroCaptureStats } from '../../src/capture/source.js';
import { ANOMALIES, SKIPS } from '../../src/decode/anomalies.js';
import { Metrics } from '../../src/metrics/registry.js';
import { errorInfo, type WorkerMessage } from '../../src/pipeline/messages.js';
import type { CaptureFault } from '../../src/pipeline/stages.js';
import { CaptureWorkers } from '../../src/pipeline/workers.js';
import { REASSEMBLY_EVENTS } from '../../src/reassemble/table.js';
import { DEFAULT_HTTP_LIMITS } from '../../src/http/types.js';

test('workers: handler errors in the workers\' stats are summed per interface into mirror_replay_capture_errors_total; a fault message is reported with what was thrown', async () => {
  const faults: CaptureFault[] = [];
  const sink = { request: () => true, dropped: () => {}, overflow: () => {} };
  const cw = new CaptureWorkers({ interfaces: ['vxlan0'], workers: 2, ring: { ringMiB: 64, blockKiB: 128, retireMs: 100 }, stages: { table: { port: 80 }, limits: DEFAULT_HTTP_LIMITS }, onFault: (f) => faults.push(f) }, sink as never);
  const metrics = new Metrics([], undefined, { defaultMetrics: false });
  metrics.readFrom({ ...cw.probe, destinations: () => [] });
  const receive = (i: number, m: WorkerMessage) => cw['received'](cw.loops[i], m);
  const stages = { anomalies: new Float64Array(ANOMALIES.length), skips: new Float64Array(SKIPS.length), events: new Float64Array(REASSEMBLY_EVENTS.length), openFlows: 0, heldBytes: 0, sinkBytes: 0 };
  receive(0, { type: 'stats', capture: { ...zeroCaptureStats(), handlerErrors: 2 }, progress: 1, stages });
  receive(1, { type: 'stats', capture: { ...zeroCaptureStats(), handlerErrors: 5, badBlocks: 1 }, progress: 1, stages });
  const err = new TypeError('cannot read properties of undefined');
  receive(1, { type: 'fault', kind: 'handler', error: errorInfo(err), suppressed: 4 });

  assert.equal(await metrics.total('mirror_replay_capture_errors_total', { interface: 'vxlan0', kind: 'handler' }), 7);
  assert.equal(await metrics.total('mirror_replay_capture_errors_total', { interface: 'vxlan0', kind: 'bad_block' }), 1);
  assert.equal(await metrics.total('mirror_replay_capture_errors_total', { interface: 'vxlan0', kind: 'loss_handler' }), 0);
  assert.equal(faults.length, 1);
  assert.deepEqual({ ...faults[0], error: undefined }, { interface: 'vxlan0', kind: 'handler', error: undefined, suppressed: 4 });
  assert.equal((faults[0].error as Error).name, 'TypeError');
  assert.equal((faults[0].error as Error).message, 'cannot read properties of undefined');
  assert.match((faults[0].error as Error).stack ?? '', /workers\.test/, 'the stack thrown in the worker comes along');
});
