/** Every shipped example config validates against the schema; the IAM policy names only the calls the provider makes. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

describe('examples', () => {
  it.each(['aws', 'vault', 'kubernetes'])('%s/stem-rotor.yaml is a valid config', (dir) => {
    const path = join(EXAMPLES, dir, 'stem-rotor.yaml');
    expect(() => parseConfig(parse(readFileSync(path, 'utf8')), path)).not.toThrow();
  });

  it('the CronJob embeds a valid config and runs `run --once` with the RBAC service account; the daemon runs two replicas with /healthz', () => {
    const documents = readFileSync(join(EXAMPLES, 'kubernetes', 'cronjob.yaml'), 'utf8').split(/^---$/m).map((text) => parse(text) as Record<string, any>);
    const configMap = documents.find((document) => document.kind === 'ConfigMap');
    const config = parse(configMap?.data['stem-rotor.yaml']);
    expect(() => parseConfig(config, '/etc/stem-rotor/stem-rotor.yaml')).not.toThrow();
    expect(parseConfig(config, '/etc/stem-rotor/stem-rotor.yaml').store.type).toBe('redis');
    const cronJob = documents.find((document) => document.kind === 'CronJob');
    const pod = cronJob?.spec.jobTemplate.spec.template.spec;
    expect(pod.serviceAccountName).toBe('stem-rotor');
    expect(pod.containers[0].args).toEqual(expect.arrayContaining(['run', '--once']));
    expect(pod.containers[0].image).toMatch(/stem-rotor:\d+\.\d+\.\d+/);
    expect(cronJob?.spec.concurrencyPolicy).toBe('Forbid');
    const daemon = parse(readFileSync(join(EXAMPLES, 'kubernetes', 'daemon.yaml'), 'utf8')) as Record<string, any>;
    expect(daemon.spec.replicas).toBe(2);
    expect(daemon.spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['--interval', '--listen']));
    expect(daemon.spec.template.spec.containers[0].livenessProbe.httpGet.path).toBe('/healthz');
  });

  it('no example fetches a package at run time: deployments run an image built from the Dockerfile', () => {
    const texts = readdirSync(EXAMPLES, { recursive: true, encoding: 'utf8' }).filter((file) => /\.(ya?ml|json|mjs|sh)$/.test(file)).map((file) => readFileSync(join(EXAMPLES, file), 'utf8'));
    expect(texts.filter((text) => /\bnpx\b|npm (?:exec|install)|image: node:/.test(text))).toEqual([]);
    const dockerfile = readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8');
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:(2[4-9]|[3-9]\d)-/m); // a supported Node
    expect(dockerfile).toContain('ENTRYPOINT ["stem-rotor"]');
  });

  it('the IAM policy allows exactly the Secrets Manager actions the provider calls, on named secrets', () => {
    const policy = JSON.parse(readFileSync(join(EXAMPLES, 'aws', 'iam-policy.json'), 'utf8')) as { Statement: { Action: string[]; Resource: string[] }[] };
    const source = readFileSync(fileURLToPath(new URL('../../providers/aws-secrets-manager.ts', import.meta.url)), 'utf8');
    const called = [...source.matchAll(/new sdk\.(\w+)Command/g)].map((match) => `secretsmanager:${match[1]}`);
    expect([...new Set(called)].sort()).toEqual([...(policy.Statement[0]?.Action ?? [])].sort());
    expect(policy.Statement[0]?.Resource.every((arn) => arn.startsWith('arn:aws:secretsmanager:'))).toBe(true);
  });

  it('the Kubernetes Role grants only get/update on named Secrets, get/patch on named Deployments and creating Events', () => {
    const documents = readFileSync(join(EXAMPLES, 'kubernetes', 'rbac.yaml'), 'utf8').split(/^---$/m).map((text) => parse(text) as { kind: string; rules?: { resources: string[]; verbs: string[]; resourceNames?: string[] }[] });
    const role = documents.find((document) => document.kind === 'Role');
    expect(role?.rules?.map((rule) => `${rule.resources.join()}:${rule.verbs.join()}`)).toEqual(['secrets:get,update', 'deployments:get,patch', 'events:create']);
    // everything but creating Events (which Kubernetes cannot restrict by name) is limited to named objects
    expect(role?.rules?.filter((rule) => !rule.resources.includes('events')).every((rule) => (rule.resourceNames?.length ?? 0) > 0)).toBe(true);
    expect(readdirSync(join(EXAMPLES, 'kubernetes'))).toContain('stem-rotor.yaml');
  });
});
