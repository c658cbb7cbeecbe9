const t0 = performance.now();
await import('zod');
const t1 = performance.now();
await import('../src/config/load.js');
await import('../src/core/state-schema.js');
const t2 = performance.now();
process.stderr.write(`zod ${(t1 - t0).toFixed(1)} schemas ${(t2 - t1).toFixed(1)}\n`);
