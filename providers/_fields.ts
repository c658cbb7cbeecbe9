/** For providers whose secret is a JSON map: the requested fields that are strings; anything else is refused. */
import { RotorError } from '../src/errors.js';

export function stringFields(target: string, data: Readonly<Record<string, unknown>>, fields: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const field of fields) {
    const value = data[field];
    if (typeof value === 'string') values[field] = value;
    else if (value !== undefined && value !== null) throw new RotorError(`target "${target}": field ${field} is not a string`);
  }
  return values;
}
