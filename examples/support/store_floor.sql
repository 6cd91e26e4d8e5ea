-- The floor of the store's PostgreSQL work per message, for BENCHMARKS.md
-- ("RabbitMQ", session 6). Run from the repository root:
--
--     psql -h 127.0.0.1 -U postgres -d test -f examples/support/store_floor.sql
--
-- It writes, in the store's real schema (its migrations, all its indexes), the
-- rows and row versions the hub writes for each message delivered through
-- RabbitMQ, for 10,000 messages in transactions of 100:
--
--   acceptance  1 message row, 1 delivery row, 3 trail rows (received, routed,
--               mapped), the chain head moved;
--   relay       the delivery marked relayed;
--   claim       the delivery claimed (in flight);
--   settlement  1 attempt row, the delivery delivered, 2 trail rows (attempt,
--               delivered), the chain head moved.
--
-- The rows are generated inside PostgreSQL (no client, no protocol, no
-- parsing per row, no lane lookups, no idempotency lookup) and commits do not
-- wait for the WAL flush: nothing the hub does can cost PostgreSQL less. The
-- "Time:" line after the DO block is that floor for 10,000 messages, and the
-- two `backend CPU s` lines the server process's CPU seconds before and after
-- it (read from /proc, so psql must run on the database's machine).
\set ON_ERROR_STOP 1
DROP SCHEMA IF EXISTS lt_store_floor CASCADE;
CREATE SCHEMA lt_store_floor;
SET search_path = lt_store_floor;
\ir ../../router/migrations/postgres/20261128000001_init.sql
\ir ../../router/migrations/postgres/20261128000002_outbox_relay.sql
\ir ../../router/migrations/postgres/20261128000200_audit_replay_retention.sql
\ir ../../router/migrations/postgres/20261128000300_lease_order_index.sql
SET synchronous_commit = off;
SELECT pg_backend_pid() AS pid \gset
\setenv BPID :pid
\! awk '{print "backend CPU s before:", ($14 + $15) / 100}' /proc/$BPID/stat
\timing on
DO $$
DECLARE
  b int; base int; tseq bigint := 0;
  pad text := repeat('x', 300);   -- bodies, parsed trees, trail details
  h text := repeat('a', 64);      -- a SHA-256 in hex
BEGIN
FOR b IN 0..99 LOOP
  base := b * 100;
  -- acceptance
  INSERT INTO messages (id, received_at, source_system, message_type, correlation_id, idempotency_key,
                        partner_message_id, content_type, raw, parsed, state)
    SELECT 'm' || g, g, 'portal', 'dossier.event', 'HS' || (g % 1000), 'k' || g, 'p' || g,
           'application/json', convert_to(pad, 'UTF8'), pad, 'accepted'
    FROM generate_series(base, base + 99) g;
  INSERT INTO deliveries (id, message_id, destination, message_type, route_id, mapping_id, mapping_version,
                          body, content_type, state, next_attempt_at, correlation_id, created_at, updated_at)
    SELECT 'd' || g, 'm' || g, 'lis', 'dossier.event', 'r', 'map', 1, convert_to(pad, 'UTF8'),
           'application/json', 'pending', g, 'HS' || (g % 1000), g, g
    FROM generate_series(base, base + 99) g;
  INSERT INTO trail (seq, at, message_id, delivery_id, kind, actor, detail, prev_hash, hash)
    SELECT tseq + g, g, 'm' || (base + g / 3), NULL, 'received', 'intake', pad, h, h
    FROM generate_series(1, 300) g;
  tseq := tseq + 300;
  UPDATE chain_head SET seq = tseq, hash = h WHERE id = 1;
  COMMIT;
  -- relay
  UPDATE deliveries SET relayed_at = 1
    WHERE id IN (SELECT 'd' || g FROM generate_series(base, base + 99) g);
  COMMIT;
  -- claim
  UPDATE deliveries SET state = 'in_flight', lease_until = 2, attempts = attempts + 1, updated_at = 2
    WHERE id IN (SELECT 'd' || g FROM generate_series(base, base + 99) g);
  COMMIT;
  -- settlement
  INSERT INTO attempts (delivery_id, n, started_at, latency_ms, request_excerpt, status, response_excerpt,
                        error, outcome)
    SELECT 'd' || g, 1, g, 5, pad, 200, 'ok', NULL, 'delivered'
    FROM generate_series(base, base + 99) g;
  UPDATE deliveries SET state = 'delivered', lease_until = NULL, updated_at = 3
    WHERE id IN (SELECT 'd' || g FROM generate_series(base, base + 99) g);
  INSERT INTO trail (seq, at, message_id, delivery_id, kind, actor, detail, prev_hash, hash)
    SELECT tseq + g, g, 'm' || (base + g / 2), 'd' || (base + g / 2), 'attempt', 'delivery', pad, h, h
    FROM generate_series(1, 200) g;
  tseq := tseq + 200;
  UPDATE chain_head SET seq = tseq, hash = h WHERE id = 1;
  COMMIT;
END LOOP;
END $$;
\timing off
\! awk '{print "backend CPU s after:", ($14 + $15) / 100}' /proc/$BPID/stat
SELECT count(*) AS messages_written FROM messages;
RESET search_path;
DROP SCHEMA lt_store_floor CASCADE;
