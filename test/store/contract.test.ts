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
afterAll(() => server.stop());

storeContract('file', async (clock) => createFileStore({ dir: tempDir(), clock }));
// a fresh key prefix per test keeps them apart on one server
storeContract('redis', async (clock) => createRedisStore({ endpoint: { url: server.url(0), connectTimeout: 2000, commandTimeout: 5000 }, prefix: `test-${prefix++}`, clock }));
