/**
 * The ceiling for `backlog-scan`: a minimal client that reads the same pages — XRANGE of every
 * stream, ZRANGE of every delayed set, COUNT = the scan's batch size — on as many connections, and
 * throws them away after finding where each reply ends. Whatever the scan does beyond this is
 * its own cost.
 */
import { connect, type Socket } from 'node:net';

/** Offset just past the RESP value starting at `at`, or -1 when the buffer ends first. */
function skipValue(buffer: Buffer, at: number): number {
  const type = buffer[at];
  const lineEnd = buffer.indexOf(13, at);
  if (lineEnd === -1 || lineEnd + 1 >= buffer.length) return -1;
  const size = Number(buffer.toString('latin1', at + 1, lineEnd));
  let next = lineEnd + 2;
  if (type === 0x24) return size < 0 ? next : next + size + 2 <= buffer.length ? next + size + 2 : -1;
  if (type !== 0x2a) return next;
  for (let i = 0; i < size; i += 1) {
    next = skipValue(buffer, next);
    if (next === -1) return -1;
  }
  return next;
}

/** The id of an XRANGE entry (`*2 $id *fields`) starting at `at`. */
function entryId(buffer: Buffer, at: number): string {
  const lengthStart = buffer.indexOf(13, at) + 2;
  const lengthEnd = buffer.indexOf(13, lengthStart);
  const idStart = lengthEnd + 2;
  return buffer.toString('latin1', idStart, idStart + Number(buffer.toString('latin1', lengthStart + 1, lengthEnd)));
}

class DrainConnection {
  private chunks: Buffer[] = [];
  private waiting: (() => void) | null = null;

  private readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.waiting?.();
    });
  }

  static open(port: number): Promise<DrainConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(new DrainConnection(socket)));
      socket.once('error', reject);
    });
  }

  /**
   * Sends one command and reads its array reply element by element as bytes arrive, dropping what
   * it has passed; returns the element count and the id of the last element when it is an entry.
   */
  async command(args: readonly string[], entries: boolean): Promise<{ count: number; lastId: string | null }> {
    this.socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`);
    let buffer = Buffer.alloc(0);
    let count = -1;
    let remaining = 0;
    let lastId: string | null = null;
    for (;;) {
      if (this.chunks.length > 0) {
        buffer = Buffer.concat([buffer, ...this.chunks]);
        this.chunks = [];
        let at = 0;
        if (count === -1) {
          const lineEnd = buffer.indexOf(13);
          if (lineEnd !== -1 && lineEnd + 1 < buffer.length) {
            count = remaining = Math.max(0, Number(buffer.toString('latin1', 1, lineEnd)));
            at = lineEnd + 2;
          }
        }
        if (count !== -1) {
          for (let end = 0; remaining > 0 && (end = skipValue(buffer, at)) !== -1; at = end) {
            remaining -= 1;
            if (remaining === 0 && entries) lastId = entryId(buffer, at);
          }
          if (remaining === 0) return { count, lastId };
        }
        buffer = buffer.subarray(at);
      }
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
      this.waiting = null;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Reads every page of `streams` and `zsets`; returns how many elements it read. */
export async function drainPages(port: number, streams: readonly string[], zsets: readonly string[], batchSize: number, concurrency = 4): Promise<number> {
  const work: ((connection: DrainConnection) => Promise<number>)[] = [
    ...streams.map((stream) => async (connection: DrainConnection) => {
      let read = 0;
      for (let start = '-'; ; ) {
        const reply = await connection.command(['XRANGE', stream, start, '+', 'COUNT', String(batchSize)], true);
        read += reply.count;
        if (reply.count < batchSize || reply.lastId === null) return read;
        start = `(${reply.lastId}`;
      }
    }),
    ...zsets.map((key) => async (connection: DrainConnection) => {
      let read = 0;
      for (let rank = 0; ; rank += batchSize) {
        const reply = await connection.command(['ZRANGE', key, String(rank), String(rank + batchSize - 1)], false);
        read += reply.count;
        if (reply.count < batchSize) return read;
      }
    }),
  ];
  let total = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, work.length) }, async () => {
      const connection = await DrainConnection.open(port);
      try {
        for (let next = work.shift(); next; next = work.shift()) total += await next(connection);
      } finally {
        connection.close();
      }
    }),
  );
  return total;
}
