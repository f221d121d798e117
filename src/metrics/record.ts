import client from 'prom-client';
import { RECORD_DROP_REASONS, type RecordCounters } from '../capture/record.js';

/** A counter read from the recorder's own counts at scrape time; prom-client is told the increase. */
function readCounter(reg: client.Registry, name: string, help: string, read: () => number): void {
  let last = 0;
  new client.Counter({
    name,
    help,
    registers: [reg],
    collect() {
      const cur = read();
      this.inc(Math.max(0, cur - last));
      last = cur;
    },
  });
}

/** The recording metrics (README: Recording), in the daemon's registry; every reason starts at 0. */
export function recordMetrics(reg: client.Registry, read: () => RecordCounters, buffered: () => number): void {
  readCounter(reg, 'mirror_replay_record_frames_written_total', 'Frames written to --record files', () => read().framesWritten);
  readCounter(reg, 'mirror_replay_record_bytes_written_total', 'Captured bytes of the frames written to --record files (before compression)', () => read().bytesWritten);
  readCounter(reg, 'mirror_replay_record_files_total', '--record files started', () => read().filesOpened);
  readCounter(reg, 'mirror_replay_record_files_deleted_total', '--record files deleted to keep --record-max-files', () => read().filesDeleted);
  const last = new Map<string, number>();
  new client.Counter({
    name: 'mirror_replay_record_frames_dropped_total',
    help: 'Frames the recorder could not write, by reason (buffer_full, disk_full, write_error); replay is not affected',
    labelNames: ['reason'],
    registers: [reg],
    collect() {
      const d = read().dropped;
      for (const r of RECORD_DROP_REASONS) {
        this.inc({ reason: r }, Math.max(0, d[r] - (last.get(r) ?? 0)));
        last.set(r, d[r]);
      }
    },
  });
  new client.Gauge({ name: 'mirror_replay_record_buffered_bytes', help: 'Bytes waiting in memory for the --record files', registers: [reg], collect() { this.set(buffered()); } });
}
