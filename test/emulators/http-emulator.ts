/** The listening part every HTTP emulator shares: a free loopback port, start, stop. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { freePort } from '../helpers/redis-server.js';

export abstract class HttpEmulator {
  private server: Server | null = null;
  port = 0;
  protected tls: { cert: Buffer; key: Buffer } | null = null;

  protected abstract handle(request: IncomingMessage, response: ServerResponse): Promise<void>;

  async start(): Promise<this> {
    this.port = await freePort();
    const handler = (request: IncomingMessage, response: ServerResponse) => void this.handle(request, response);
    this.server = this.tls ? createTlsServer(this.tls, handler) : createServer(handler);
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
