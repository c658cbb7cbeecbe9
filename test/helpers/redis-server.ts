/** A real redis-server per test file, on a free port, that tests can stop and restart. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { tempDir } from './fs.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** SIGKILL a child process and wait until it is gone. */
export async function killProcess(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Every redis-server still running when the test process exits is killed: the suite leaves none behind. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class RedisServer {
  private process: ChildProcess | null = null;
  readonly dir = tempDir('stem-rotor-redis-');
  port = 0;
  private readonly extraArgs: string[];

  constructor(extraArgs: string[] = []) {
    this.extraArgs = extraArgs;
  }

  url(db = 0): string {
    return `redis://127.0.0.1:${this.port}/${db}`;
  }

  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    // With TLS options, the one port is the TLS port and plain TCP is off.
    const tls = this.extraArgs.some((arg) => arg.startsWith('--tls-'));
    const ports = tls ? ['--port', '0', '--tls-port', String(this.port)] : ['--port', String(this.port)];
    const args = [...ports, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extraArgs];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir }); // the suite's final check finds leftovers by cwd
    this.process = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited ${code}: ${output}`));
      });
    });
    return this;
  }

  async stop(): Promise<void> {
    await killProcess(this.process);
    this.process = null;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  client(db = 0, options: { password?: string; username?: string } = {}): Redis {
    return new Redis({ port: this.port, host: '127.0.0.1', db, ...options });
  }
}

export interface RedisForTests {
  server: RedisServer;
  /** DB 0: Stem's broker. */
  broker: Redis;
  /** DB 1: Stem's result backend. */
  backend: Redis;
}

/** A redis-server for the calling test file, started before its tests and stopped after them. */
export function redisForTests(): RedisForTests {
  const live = {} as RedisForTests;
  beforeAll(async () => {
    live.server = await new RedisServer().start();
    live.broker = live.server.client(0);
    live.backend = live.server.client(1);
  });
  afterAll(async () => {
    live.broker?.disconnect();
    live.backend?.disconnect();
    await live.server?.stop();
  });
  return live;
}
