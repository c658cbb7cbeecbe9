/** Every Redis key name stem-rotor reads from Stem's data (stem-interop §3–4, TV5), built in one place. */
export function stemKeys(namespace: string) {
  return {
    streamPattern: `${namespace}:stream:*`,
    deadPattern: `${namespace}:dead:*`,
    delayedPattern: `${namespace}:delayed:*`,
    /** Broadcast channel streams: `<ns>:broadcast:<channel>`; channels may contain `:` (never split on it). */
    broadcastPattern: `${namespace}:broadcast:*`,
    broadcast: (channel: string) => `${namespace}:broadcast:${channel}`,
    heartbeatSet: `${namespace}:worker:heartbeats`,
    heartbeat: (workerId: string) => `${namespace}:worker:heartbeat:${workerId}`,
    /** Priority 0 is the bare stream; 1..9 get a `:pN` suffix. */
    stream: (queue: string, priority = 0) => (priority > 0 ? `${namespace}:stream:${queue}:p${Math.min(9, priority)}` : `${namespace}:stream:${queue}`),
    group: (queue: string) => `${namespace}:group:${queue}`,
    delayed: (queue: string) => `${namespace}:delayed:${queue}`,
    dead: (queue: string) => `${namespace}:dead:${queue}`,
    /** `<ns>:stream:<queue>[:pN]` → queue name, or null for another namespace's key. */
    queueOfStream: (key: string) => (key.startsWith(`${namespace}:stream:`) ? key.slice(`${namespace}:stream:`.length).replace(/:p[1-9]$/, '') : null),
    queueOf: (key: string, kind: 'dead' | 'delayed') => (key.startsWith(`${namespace}:${kind}:`) ? key.slice(`${namespace}:${kind}:`.length) : null),
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Stem's own control queues (stem-interop-2 §2): `<cns>.control.worker.<id>`, `<cns>.control.broadcast`
 * and `<cns>.control.reply.<id>` for a known worker/control namespace `<cns>`. Workers never verify
 * them, so they are not backlog; any other queue — `fleet.control.commands` included — is.
 */
export function isStemControlQueue(queue: string, controlNamespaces: readonly string[]): boolean {
  return controlNamespaces.some((namespace) => new RegExp(`^${escapeRegExp(namespace)}\\.control\\.(worker\\..+|broadcast|reply\\..+)$`).test(queue));
}
