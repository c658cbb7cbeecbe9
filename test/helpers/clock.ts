import type { Clock } from '../../src/clock.js';

/** A clock tests move by hand; `sleep` advances it instead of waiting. */
export class SimulatedClock implements Clock {
  private current: number;
  constructor(start = '2026-11-28T10:00:00.000Z') {
    this.current = Date.parse(start);
  }
  now(): Date {
    return new Date(this.current);
  }
  increment(milliseconds: number): void {
    this.current += milliseconds;
  }
  async sleep(milliseconds: number): Promise<void> {
    this.current += milliseconds;
  }
}
