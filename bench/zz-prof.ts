import { countBacklog } from '../src/stem/backlog.js';
const endpoint = { url: 'redis://127.0.0.1:6379/9', connectTimeout: 5000, commandTimeout: 600_000 };
const { connectRedis } = await import('../src/endpoints/redis.js');
const redis = await connectRedis(endpoint, 'p');
const opts = { namespace: 'stem', controlNamespaces: ['stem'], keyIds: ['bench-20260101-0001'], after: new Date('2026-11-28T01:00:00.000Z'), batchSize: 2000 };
for (let i = 0; i < Number(process.argv[2] ?? 3); i++) {
  const t = process.hrtime.bigint();
  const r = await countBacklog(redis, endpoint, { ...opts, concurrency: Number(process.env.C ?? 4), batchSize: Number(process.env.B ?? 2000) });
  console.log(Number(process.hrtime.bigint() - t) / 1e6, 'ms', r.total.scanned, r.total.signed);
}
redis.disconnect();
