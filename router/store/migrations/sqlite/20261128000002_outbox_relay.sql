-- The outbox relay of the RabbitMQ queue backend (router/src/queue/rabbitmq):
-- when a delivery was published to the broker (epoch ms), NULL while it waits.
-- The embedded queue never sets it.
ALTER TABLE deliveries ADD COLUMN relayed_at BIGINT;
CREATE INDEX deliveries_unrelayed ON deliveries (seq) WHERE relayed_at IS NULL AND state IN ('pending', 'in_flight');
