/**
 * A capture worker thread: one ring in a PACKET_FANOUT group feeding the same Stages as the main
 * thread would (stages.ts). Complete requests and drops go to the main thread in batches
 * (handoff.ts); the counters follow every sweep. On "stop" it stops the ring, closes its flows
 * (partial requests are counted), posts the last batch and counters, then "ended": nothing it
 * parsed is posted after.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { PacketRing } from '../capture/ring.js';
import { HandoffWriter } from './handoff.js';
import { errorInfo, type CaptureWorkerSetup, type WorkerMessage, type WorkerStats } from './messages.js';
import { faultReporter, Stages, ThreadCapture, type RequestSink } from './stages.js';

async function main(port: MessagePort, setup: CaptureWorkerSetup): Promise<void> {
  const out = new HandoffWriter((b, transfer) => port.postMessage(b, transfer), setup.budget);
  const handoff: RequestSink = {
    // Whether the replay keeps it is decided in the main thread.
    request: (req, flow) => {
      out.request(req, flow);
      return true;
    },
    dropped: (reason, requests, skippedBytes) => out.dropped(reason, requests, skippedBytes),
  };
  const stages = new Stages(setup.stages, handoff);
  let ring: PacketRing;
  try {
    ring = new PacketRing({
      ...setup.ring,
      interface: setup.interface,
      port: setup.stages.table.port,
      fanoutGroup: setup.fanout,
      blockingPoll: true,
      onLoss: () => stages.captureLoss(),
      onError: faultReporter(setup.interface, (f) => port.postMessage({ type: 'fault', kind: f.kind, error: errorInfo(f.error), suppressed: f.suppressed } satisfies WorkerMessage)),
    });
  } catch (e) {
    port.postMessage({ type: 'bound', fanout: -1 } satisfies WorkerMessage);
    port.postMessage({ type: 'ended', error: errorInfo(e) } satisfies WorkerMessage);
    port.close();
    return;
  }
  const stats = (): WorkerStats => ({ type: 'stats', capture: ring.stats(), progress: ring.progress(), stages: stages.counters() });
  const capture = new ThreadCapture([ring], stages, () => port.postMessage(stats()));

  const ended = capture.run();
  port.on('message', (m: { type: string }) => {
    if (m.type === 'stop') capture.stop();
  });
  await capture.bound();
  port.postMessage({ type: 'bound', fanout: ring.fanoutId } satisfies WorkerMessage);

  const [error] = await ended;
  capture.close();
  out.flush();
  port.postMessage(stats());
  port.postMessage({ type: 'ended', error: error ? errorInfo(error) : undefined } satisfies WorkerMessage);
  port.close();
}

main(parentPort!, workerData as CaptureWorkerSetup).catch((e: unknown) => {
  // A bug: let the main thread see it as the worker's 'error' event.
  setImmediate(() => {
    throw e;
  });
});
