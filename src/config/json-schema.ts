/** The config file's JSON Schema, generated from the zod schema (for editors: yaml-language-server). */
import * as z from 'zod';
import { configSchema } from './schema.js';

export const SCHEMA_FILE = 'stem-rotor.schema.json';

export function configJsonSchema(): Record<string, unknown> {
  // input shapes: what a person writes (durations as "5m" or ms), defaults shown, refinements checked by stem-rotor itself
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, $id: SCHEMA_FILE, title: 'stem-rotor configuration (stem-rotor.yaml)' };
}
