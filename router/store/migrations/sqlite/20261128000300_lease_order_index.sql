-- Leasing walks a destination's unfinished deliveries in acceptance order (seq) and
-- stops after LIMIT head-of-line rows. Without this index the planner used
-- deliveries_due (destination, next_attempt_at) and sorted the whole backlog on every
-- lease, which made leasing O(backlog) and let a backlog feed on itself under load.
CREATE INDEX deliveries_dest_seq ON deliveries (destination, seq)
    WHERE state IN ('pending', 'in_flight');
