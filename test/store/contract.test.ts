import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { createFileStore } from '../../src/store/file.js';
import { createRedisStore } from '../../src/store/redis.js';
import { tempDir } from '../helpers/fs.js';
import { RedisServer } from '../helpers/redis-server.js';
import { storeContract } from './contract.js';

let server: RedisServer;
let prefix = 0;
beforeAll(async () => {
  server = await new RedisServer().start();
});
const after: (() => void)[] = [];
afterAll(() => {
  for (const close of after) close();
  return server.stop();
});

storeContract('file', async (clock) => {
  const dir = tempDir();
  const audit = join(dir, 'audit.jsonl');
  return {
    store: createFileStore({ dir, clock }),
    raw: {
      stateWhere: (ring) => join(dir, 'rings', `${ring}.json`),
      putState: async (ring, text) => {
        mkdirSync(join(dir, 'rings'), { recursive: true });
        writeFileSync(join(dir, 'rings', `${ring}.json`), text);
      },
      removeAuditRecord: async (index) => writeFileSync(audit, readFileSync(audit, 'utf8').split('\n').filter((_, i) => i !== index).join('\n')),
      setLeaseHolder: async (ring, holder) => {
        const path = join(dir, 'rings', `${ring}.lease`);
        writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), holder }));
      },
    },
  };
});
// a fresh key prefix per test keeps them apart on one server
storeContract('redis', async (clock) => {
  const keyPrefix = `test-${prefix++}`;
  const client = new Redis(server.url(0));
  after.push(() => client.disconnect());
  return {
    store: createRedisStore({ endpoint: { url: server.url(0), connectTimeout: 2000, commandTimeout: 5000 }, prefix: keyPrefix, clock }),
    raw: {
      stateWhere: (ring) => `Redis key ${keyPrefix}:ring:{${ring}}:state field "state"`,
      putState: async (ring, text) => void (await client.hset(`${keyPrefix}:ring:{${ring}}:state`, 'state', text)),
      removeAuditRecord: async (index) => {
        const entries = await client.xrange(`${keyPrefix}:audit`, '-', '+');
        await client.xdel(`${keyPrefix}:audit`, (entries[index] as [string, string[]])[0]);
      },
      setLeaseHolder: async (ring, holder) => void (await client.hset(`${keyPrefix}:ring:{${ring}}:lease`, 'holder', JSON.stringify(holder))),
    },
  };
});
