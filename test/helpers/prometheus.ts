/**
 * A real Prometheus (Debian package) scraping a tiny exporter that serves Stem's OTLP-collector
 * series `stem_tasks_signature_invalid_total`. Optional basic auth via Prometheus' web config.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { tempDir } from './fs.js';
import { freePort, killProcess } from './redis-server.js';

export class SignatureInvalidExporter {
  value = 0;
  private server: Server | null = null;
  port = 0;

  async start(): Promise<this> {
    this.port = await freePort();
    this.server = createServer((_request, response) => {
      response.setHeader('content-type', 'text/plain; version=0.0.4');
      response.end(`# TYPE stem_tasks_signature_invalid_total counter\nstem_tasks_signature_invalid_total{task="demo.task",queue="default"} ${this.value}\n`);
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export class PrometheusServer {
  private process: ChildProcess | null = null;
  port = 0;
  readonly dir = tempDir('stem-rotor-prom-');

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(exporterPort: number, basicAuth?: { username: string; password: string }): Promise<this> {
    this.port = await freePort();
    writeFileSync(
      join(this.dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: stem\n    static_configs:\n      - targets: ['127.0.0.1:${exporterPort}']\n`,
    );
    const args = [`--config.file=${join(this.dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(this.dir, 'data')}`, `--web.listen-address=127.0.0.1:${this.port}`, '--log.level=warn'];
    if (basicAuth) {
      writeFileSync(join(this.dir, 'web.yml'), `basic_auth_users:\n  ${basicAuth.username}: ${bcrypt.hashSync(basicAuth.password, 4)}\n`);
      args.push(`--web.config.file=${join(this.dir, 'web.yml')}`);
    }
    const child = spawn('prometheus', args, { stdio: 'ignore', cwd: this.dir }); // the suite's final check finds leftovers by cwd
    this.process = child;
    process.once('exit', () => child.kill('SIGKILL')); // never outlives the test process
    const auth = basicAuth ? { authorization: `Basic ${Buffer.from(`${basicAuth.username}:${basicAuth.password}`).toString('base64')}` } : undefined;
    for (let attempt = 0; attempt < 150; attempt += 1) {
      try {
        const response = await fetch(`${this.url}/api/v1/query?query=up`, { headers: auth });
        const body = (await response.json()) as { data?: { result?: unknown[] } };
        if (response.ok && (body.data?.result?.length ?? 0) > 0) return this;
      } catch {
        // not up yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error('Prometheus did not start scraping in 30s');
  }

  /** Waits until Prometheus has scraped the exporter's current value. */
  async waitFor(query: string, predicate: (values: number[]) => boolean, auth?: string): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(query)}`, auth ? { headers: { authorization: auth } } : {});
      const body = (await response.json()) as { data: { result: { value: [number, string] }[] } };
      if (predicate(body.data.result.map((sample) => Number(sample.value[1])))) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${query} never matched`);
  }

  async stop(): Promise<void> {
    await killProcess(this.process);
  }
}
