/**
 * The provider contract at its smallest: fields in memory, a version per write, compare-and-set.
 * The reference the contract suite holds every real provider to; `outside` is a writer that is not
 * stem-rotor (an operator, another tool).
 */
import type { Provider, TargetSnapshot, WriteRequest } from '../../providers/types.js';
import { ConflictError } from '../../src/errors.js';

export class MemoryProvider implements Provider {
  readonly providerName = 'memory';
  readonly location: string;
  private fields: Record<string, string>;
  private version = 1;

  constructor(name: string, fields: Record<string, string>) {
    this.location = `memory ${name}`;
    this.fields = { ...fields };
  }

  async read(names: readonly string[]): Promise<TargetSnapshot> {
    return { fields: Object.fromEntries(names.flatMap((name) => (name in this.fields ? [[name, this.fields[name] as string]] : []))), version: `mem:${this.version}` };
  }

  async write(request: WriteRequest): Promise<{ version: string }> {
    if (request.expectedVersion !== `mem:${this.version}`) throw new ConflictError(`${this.location}: changed concurrently (at mem:${this.version}, expected ${request.expectedVersion})`);
    this.outside(request.set);
    return { version: `mem:${this.version}` };
  }

  /** A change made by someone else. */
  outside(set: Readonly<Record<string, string>>): void {
    this.fields = { ...this.fields, ...set };
    this.version += 1;
  }

  /** Every field, as an operator would see them. */
  all(): Record<string, string> {
    return { ...this.fields };
  }
}
