/**
 * The monitoring that ships: the alert rules pass `promtool check rules` and their unit tests
 * (`promtool test rules`, every alert covered), every alert links a runbook section that exists, and
 * every metric the rules and the Grafana dashboard query is one stem-rotor really exports.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RULES_DIR = join(ROOT, 'examples', 'prometheus');

interface RuleFile {
  groups: { rules: { alert: string; expr: string; annotations: { runbook_url: string } }[] }[];
}

const rules = (parse(readFileSync(join(RULES_DIR, 'stem-rotor.rules.yaml'), 'utf8')) as RuleFile).groups.flatMap((group) => group.rules);
const dashboard = JSON.parse(readFileSync(join(ROOT, 'examples', 'grafana', 'stem-rotor.dashboard.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[]; templating: { list: { definition?: string }[] } };

/** What the built CLI exports: every `# TYPE` of a real `run --once --metrics-file`. */
function exportedMetricNames(): Set<string> {
  const dir = tempDir('stem-rotor-monitoring-');
  expect(cli(['init', '--dir', dir]).code).toBe(0);
  mkdirSync(join(dir, 'textfile'));
  const file = join(dir, 'textfile', 'stem-rotor.prom');
  expect(cli(['run', '--once', '--config', join(dir, 'stem-rotor.yaml'), '--metrics-file', file]).code).toBe(0);
  return new Set([...readFileSync(file, 'utf8').matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1] as string));
}

function metricNames(expression: string): string[] {
  return [...expression.matchAll(/\bstem_rotor_[a-z_]+\b/g)].map((match) => match[0]);
}

describe('monitoring that ships', () => {
  it('the alert rules are valid and every alert has a firing and a quiet unit test', () => {
    expect(rules.length).toBeGreaterThanOrEqual(7);
    execFileSync('promtool', ['check', 'rules', 'stem-rotor.rules.yaml'], { cwd: RULES_DIR, stdio: 'pipe' });
    const tested = execFileSync('promtool', ['test', 'rules', 'stem-rotor.rules.test.yaml'], { cwd: RULES_DIR, encoding: 'utf8' });
    expect(tested).toContain('SUCCESS');
    const cases = (parse(readFileSync(join(RULES_DIR, 'stem-rotor.rules.test.yaml'), 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests.flatMap((test) => test.alert_rule_test);
    for (const rule of rules) {
      const own = cases.filter((test) => test.alertname === rule.alert);
      expect(own.some((test) => test.exp_alerts.length > 0), `${rule.alert} fires in a test`).toBe(true);
      expect(own.some((test) => test.exp_alerts.length === 0), `${rule.alert} stays quiet in a test`).toBe(true);
    }
  });

  it('every alert links a runbook section that exists', () => {
    const runbooks = readFileSync(join(ROOT, 'docs', 'runbooks.md'), 'utf8');
    const anchors = new Set([...runbooks.matchAll(/^## (.+)$/gm)].map((match) => (match[1] as string).toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    for (const rule of rules) {
      const anchor = rule.annotations.runbook_url.split('#')[1];
      expect(anchors.has(anchor ?? ''), `${rule.alert} → #${anchor}`).toBe(true);
    }
  });

  it('the rules and the dashboard query only metrics stem-rotor exports', () => {
    const exported = exportedMetricNames();
    expect(exported.size).toBeGreaterThan(10);
    const queried = [...rules.map((rule) => rule.expr), ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr)), ...dashboard.templating.list.flatMap((variable) => (variable.definition ? [variable.definition] : []))].flatMap(metricNames);
    expect(queried.length).toBeGreaterThan(15);
    expect([...new Set(queried)].filter((name) => !exported.has(name))).toEqual([]);
  });
});
