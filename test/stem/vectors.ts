/** Test vectors from stem-interop.md ("Computed from the canonical-form spec", TV4, V1, V2). */
import type { Envelope } from '../../src/stem/envelope.js';

export const ANOTHER_SECRET = 'YW5vdGhlci1zZWNyZXQ='; // "another-secret"
export const EXAMPLE_PRIMARY = 'c3VwZXItc2VjcmV0LXN1cGVyLXNlY3JldA==';
export const EXAMPLE_ROTATED = 'bmV4dC1zZWNyZXQtbmV4dC1zZWNyZXQ=';
export const ED_SEED = 'v/eFuFJGEl0ieIlYionIcFjYKmKK/lMrfi+pGcLsKew=';
export const ED_PUBLIC = 'MQKrHe7hFRCoOi1DGdEdQOcfQGqEcTQGt79szn6gTJ0=';

export const V1: Envelope = {
  id: 'task-1',
  name: 'demo.task',
  args: { value: 1 },
  headers: {},
  enqueuedAt: '2024-01-01T00:00:00.000Z',
  notBefore: null,
  priority: 0,
  attempt: 0,
  maxRetries: 0,
  visibilityTimeout: null,
  queue: 'default',
  meta: {},
};

export const V1_CANONICAL =
  '{"args":{"value":1},"attempt":0,"enqueuedAt":"2024-01-01T00:00:00.000Z","headers":{},"id":"task-1","maxRetries":0,"meta":{},"name":"demo.task","notBefore":null,"priority":0,"queue":"default","visibilityTimeoutMs":null}';
export const V1_SHA256 = 'c4c8ae98d4c64048713885e9a87b6c2766b7bc309451448a24a7d13859165564';

export const V2: Envelope = {
  id: '018f3c1e-7a2b-7c00-9d3e-0123456789ab',
  name: 'rotation.demo',
  args: { label: 'rotation-1', key: 'rotated', '10': true, '9': [1, 'x', null], nested: { b: 2, a: 'é\n"' } },
  headers: { 'stem-args-encoder': 'json', traceparent: '00-abc-def-01' },
  enqueuedAt: '2024-05-06T07:08:09.123456Z',
  notBefore: '2024-05-06T07:09:00.000Z',
  priority: 3,
  attempt: 1,
  maxRetries: 5,
  visibilityTimeout: 30000,
  queue: 'rotation',
  meta: { __stemArgsEncoder: 'json' },
};

export const V2_CANONICAL =
  '{"args":{"10":true,"9":[1,"x",null],"key":"rotated","label":"rotation-1","nested":{"a":"é\\n\\"","b":2}},"attempt":1,"enqueuedAt":"2024-05-06T07:08:09.123456Z","headers":{"stem-args-encoder":"json","traceparent":"00-abc-def-01"},"id":"018f3c1e-7a2b-7c00-9d3e-0123456789ab","maxRetries":5,"meta":{"__stemArgsEncoder":"json"},"name":"rotation.demo","notBefore":"2024-05-06T07:09:00.000Z","priority":3,"queue":"rotation","visibilityTimeoutMs":30000}';
export const V2_SHA256 = 'aaffcaf83ce8384c6e0c27c3412d71bb10b0720d54e55568e7cfbcd51653caee';

export const SIGNATURES = {
  V1: {
    anotherSecret: 'IqvXHj86Lfm5lcTHcXKPZStvaUzY9pIBUIr9wluUjGs=',
    examplePrimary: 'U4vFFDivBR1zToElw7QlxYrGpnlFhqT4wYdFDD8O9FE=',
    exampleRotated: 'fjdjw3+tLrlujvDm+ffMaZAnFboq6q/5s29c/yUaGYo=',
    ed25519: 'y7wzBryHgho9RptyBsOj07976GTwyRHJvAv4/9ri6U8TZ/hosT76cDxfaBQVzywbNfeBBT7gRODxAixtBRReBA==',
  },
  V2: {
    anotherSecret: 'yuUIHM/8bDOeIFRnS4lZLKqkUF8hyYDazjCwpIA7Gss=',
    examplePrimary: '3xJStinSAOpzbny6aujEsFI9d7bbI0js1SKCSEH73qM=',
    exampleRotated: 'enWbLv4ymKoEHpY8JQDW/YwZiRiOeGhpMgn8hcpg1gs=',
    ed25519: 'J+k3S/Jk7OpOhtSmEmqt0Dj+6bXgG8kLRoa7Fm8T0KWsQrRj1/qU6o6VVE22DgkxdRSW1P94GWJDIwddw3+pCQ==',
  },
} as const;
