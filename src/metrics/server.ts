import http from 'node:http';
import type { Registry } from 'prom-client';

type Probe = () => { ok: boolean; detail: string };

/**
 * Serves /metrics for Prometheus, /healthz (alive: the capture loops make progress) and /readyz
 * (ready: capture bound, frames flowing or the link idle, not stopping).
 */
export function startMetricsServer(registry: Registry, host: string, port: number, healthy: Probe, ready: Probe = healthy): Promise<http.Server> {
  const server = http.createServer(async (req, res) => {
    try {
      if (req.url === '/metrics') {
        const body = await registry.metrics();
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(body);
      } else if (req.url === '/healthz' || req.url === '/readyz') {
        const h = req.url === '/healthz' ? healthy() : ready();
        res.writeHead(h.ok ? 200 : 503, { 'Content-Type': 'text/plain' });
        res.end(`${h.detail}\n`);
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found: try /metrics, /healthz or /readyz\n');
      }
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`${(e as Error).message}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
