-- Least privilege for stem-rotor on Stem's PostgreSQL broker/backend: it only reads.
-- Run as the owner of Stem's tables (Stem always creates them in schema public), in Stem's database.
-- Then point the ring at it: stem: { broker: { url: postgres://stem_rotor@db:5432/stem, passwordEnv: STEM_ROTOR_PG_PASSWORD } }
CREATE ROLE stem_rotor LOGIN;                      -- set its password with \password stem_rotor
GRANT CONNECT ON DATABASE stem TO stem_rotor;
GRANT USAGE ON SCHEMA public TO stem_rotor;
GRANT SELECT ON stem_queue_jobs,                  -- queued, delayed and in-flight envelopes (stem-backlog, stem-signers)
                stem_dead_letters,                -- signature-invalid dead letters (stem-dlq, dlq inspect)
                stem_broadcast_messages,          -- broadcasts every new worker id re-reads
                stem_broadcast_ack,               -- which worker ids have read which broadcast
                stem_worker_heartbeats            -- live workers and when they started (stem-workers)
  TO stem_rotor;
ALTER ROLE stem_rotor SET default_transaction_read_only = on;

-- Only if you use `stem-rotor broadcast resign` on this broker (it re-signs old-key broadcasts in
-- place and deletes those every worker has read, in one transaction):
-- GRANT UPDATE (envelope, updated_at), DELETE ON stem_broadcast_messages TO stem_rotor;
