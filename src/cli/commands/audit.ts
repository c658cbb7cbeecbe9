import { createContext, print, type CommonOptions } from '../context.js';

export async function auditCommand(ring: string | undefined, options: CommonOptions): Promise<void> {
  const context = await createContext(options);
  const events = await context.store.readAudit(ring);
  print(options, events, () =>
    events.map((event) => `${event.time} ${event.ring} ${event.actor.user}@${event.actor.host} ${event.action} ${event.outcome}${event.details ? ` ${JSON.stringify(event.details)}` : ''}`).join('\n') || '(no audit events)',
  );
}
