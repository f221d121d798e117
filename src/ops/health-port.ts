/**
 * The TCP health check a Network Load Balancer uses (`--health-check-port`): a connection that
 * is accepted means healthy. While the daemon is unhealthy the port is closed, so the NLB's
 * connect fails and it stops sending this adapter mirrored flows.
 */
import net from 'node:net';

export interface HealthPort {
  /** True while the port accepts connections. */
  listening(): boolean;
  /** Re-read health now (the port also re-reads it every `checkMs`). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export async function startHealthPort(host: string, port: number, healthy: () => boolean, checkMs = 1000): Promise<HealthPort> {
  let server: net.Server | null = null;
  let closed = false;
  let busy: Promise<void> = Promise.resolve();

  const open = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((sock) => {
        sock.on('error', () => undefined);
        sock.end();
      });
      s.once('error', reject);
      s.listen({ host, port, exclusive: true }, () => {
        s.off('error', reject);
        server = s;
        resolve();
      });
    });
  const shut = async () => {
    const s = server;
    server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  // Serialised so a slow listen and a close cannot interleave.
  const refresh = () =>
    (busy = busy
      .catch(() => undefined)
      .then(async () => {
      const want = !closed && healthy();
      if (want && !server) await open();
      else if (!want && server) await shut();
    }));

  await refresh();
  const timer = setInterval(() => {
    refresh().catch(() => undefined); // a failed re-listen is retried on the next tick
  }, checkMs);
  timer.unref();
  return {
    listening: () => server !== null,
    refresh,
    close: async () => {
      closed = true;
      clearInterval(timer);
      await busy.catch(() => undefined);
      await shut();
    },
  };
}
