/** `run --interval --listen`: /metrics and /healthz while it runs; SIGTERM ends it cleanly. */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { freePort } from '../helpers/redis-server.js';

async function poll(url: string, until: (text: string, status: number) => boolean): Promise<{ text: string; status: number }> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    try {
      const response = await fetch(url);
      const text = await response.text();
      if (until(text, response.status)) return { text, status: response.status };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never matched`);
}

describe('run --interval daemon', () => {
  it('serves metrics and health, rotates, and stops on SIGTERM with exit 0', async () => {
    const dir = tempDir('stem-rotor-daemon-');
    expect(cli(['init', '--dir', dir]).code).toBe(0);
    const config = join(dir, 'stem-rotor.yaml');
    writeFileSync(config, readFileSync(config, 'utf8').replace('maxAge: 30d', 'maxAge: 1ms').replace('propagate: 3s', 'propagate: 1s').replace('drain: 3s', 'drain: 1s'));
    const port = await freePort();
    const daemon = spawn(process.execPath, [BIN, 'run', '--interval', '1s', '--listen', `127.0.0.1:${port}`, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    daemon.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const health = await poll(`http://127.0.0.1:${port}/healthz`, (_text, status) => status === 200);
      expect(health.text).toMatch(/^ok: store and signal sources of 1 ring reachable/);
      const metrics = await poll(`http://127.0.0.1:${port}/metrics`, (text) => /stem_rotor_ring_phase\{ring="demo",phase="activated"\} 1/.test(text));
      expect(metrics.text).toMatch(/stem_rotor_active_key_age_seconds\{ring="demo"\} \d+/);
      expect(metrics.text).toMatch(/stem_rotor_runs_total\{ring="demo",outcome="done"\} [1-9]/);
      expect(metrics.text).toMatch(/stem_rotor_writes_total\{ring="demo"\} [1-9]/);
      expect(metrics.text).toMatch(/stem_rotor_stuck\{ring="demo"\} 0/);
      const exit = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
      daemon.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(stderr).toContain('SIGTERM: finishing the ring in progress, then exiting');
      expect(stderr).toContain(`serving /metrics and /healthz on http://127.0.0.1:${port}`);
      const lease = JSON.parse(readFileSync(join(dir, 'state', 'rings', 'demo.lease'), 'utf8')) as { expiresAt: string };
      expect(Date.parse(lease.expiresAt)).toBeLessThanOrEqual(Date.now());
    } finally {
      daemon.kill('SIGKILL');
    }
  });

  it('--listen without --interval is a usage error', () => {
    const dir = tempDir('stem-rotor-daemon-');
    cli(['init', '--dir', dir]);
    expect(cli(['run', '--once', '--listen', ':9999', '--config', join(dir, 'stem-rotor.yaml')]).code).toBe(2);
  });
});
