/**
 * The ceiling for `backlog-scan`: a minimal client that reads the same pages — XRANGE of every
 * stream in the same id ranges, ZRANGE of every delayed set in the same rank ranges, COUNT = the
 * scan's batch size — on as many connections, and throws them away after finding where each reply
 * ends. Whatever the scan does beyond this is its own cost.
 */
import { connect, type Socket } from 'node:net';
import { ENTRIES_PER_UNIT, splitRange } from '../src/stem/backlog.js';

/** Offset just past the RESP value starting at `at`, or -1 when the buffer ends first. */
function skipValue(buffer: Buffer, at: number): number {
  const type = buffer[at];
  let size = 0;
  let negative = false;
  let i = at + 1;
  for (; i < buffer.length; i += 1) {
    const byte = buffer[i] as number;
    if (byte === 13) break;
    if (byte === 0x2d) negative = true;
    else size = size * 10 + byte - 48;
  }
  if (i + 1 >= buffer.length) return -1;
  let next = i + 2;
  if (type === 0x24) return negative ? next : next + size + 2 <= buffer.length ? next + size + 2 : -1;
  if (type !== 0x2a || negative) return next;
  for (let element = 0; element < size; element += 1) {
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

/** Reads every page of `streams` ({key, first and last id, length}) and `zsets` ({key, size}) in the scan's units; returns how many elements it read. */
export async function drainPages(port: number, streams: readonly { key: string; firstId: string; lastId: string; length: number }[], zsets: readonly { key: string; size: number }[], batchSize: number, concurrency = 4): Promise<number> {
  const work: ((connection: DrainConnection) => Promise<number>)[] = [
    ...zsets.flatMap(({ key, size }) =>
      Array.from({ length: Math.max(1, Math.ceil(size / ENTRIES_PER_UNIT)) }, (_, index) => async (connection: DrainConnection) => {
        let read = 0;
        const to = Math.min(size, (index + 1) * ENTRIES_PER_UNIT);
        for (let rank = index * ENTRIES_PER_UNIT; rank < to; rank += batchSize) {
          read += (await connection.command(['ZRANGE', key, String(rank), String(Math.min(rank + batchSize, to) - 1)], false)).count;
        }
        return read;
      }),
    ),
    ...streams.flatMap((stream) =>
      splitRange(stream.firstId, stream.lastId, Math.ceil(stream.length / ENTRIES_PER_UNIT)).map((range, index, all) => async (connection: DrainConnection) => {
        const end = index === all.length - 1 ? '+' : range.end;
        let read = 0;
        for (let start = range.start; ; ) {
          const reply = await connection.command(['XRANGE', stream.key, start, end, 'COUNT', String(batchSize)], true);
          read += reply.count;
          if (reply.count < batchSize || reply.lastId === null) return read;
          start = `(${reply.lastId}`;
        }
      }),
    ),
  ];
  let total = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, work.length) }, async () => {
      const connection = await DrainConnection.open(port);
      try {
        for (let next = work.shift(); next; next = work.shift()) {
          const read = await next(connection);
          total += read;
        }
      } finally {
        connection.close();
      }
    }),
  );
  return total;
}
