/**
 * What the main thread and a capture worker say to each other: the worker's setup (workerData),
 * and its messages up: hand-off batches (handoff.ts), counters every sweep, bound, ended. Down,
 * the main thread sends only { type: 'stop' }.
 */
import type { CaptureStats } from '../capture/source.js';
import { CaptureError } from '../errors.js';
import type { Batch } from './handoff.js';
import type { StageCounters, StageOptions } from './stages.js';

export interface CaptureWorkerSetup {
  interface: string;
  /** 'new': create the group (the first worker of an interface); a number: join it. */
  fanout: number | 'new';
  /** This worker's share of the ring. */
  ring: { ringMiB: number; blockKiB: number; retireMs: number };
  /** Decode through parsing; memcapBytes is this worker's share. */
  stages: StageOptions;
  /** The hand-off bound, shared with the main thread and the other workers. */
  budget: Int32Array;
}

/** An Error as it crosses threads. */
export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  errno?: number;
  stack?: string;
}

export interface WorkerStats {
  type: 'stats';
  capture: CaptureStats;
  progress: number;
  stages: StageCounters;
}

/** An exception the worker's ring caught and carried past, already rate-limited in the worker. */
export interface WorkerFault {
  type: 'fault';
  kind: 'handler' | 'loss_handler';
  error: ErrorInfo;
  suppressed: number;
}

export type WorkerMessage = Batch | WorkerStats | WorkerFault | { type: 'bound'; fanout: number } | { type: 'ended'; error?: ErrorInfo };

export function errorInfo(e: unknown): ErrorInfo {
  const err = e as { name?: string; message?: string; code?: string; errno?: number; stack?: string };
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), code: err?.code, errno: err?.errno, stack: err?.stack };
}

/** The worker's error again, as the class it was when it is ours. */
export function toError(e: ErrorInfo): Error {
  if (e.name === 'CaptureError') return new CaptureError(e.message, e.errno);
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  err.code = e.code;
  if (e.stack) err.stack = e.stack;
  return err;
}
