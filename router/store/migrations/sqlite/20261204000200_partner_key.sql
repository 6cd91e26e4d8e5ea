-- The key a partner sees (`Idempotency-Key`) for a delivery, when it is not the
-- delivery's own id: an as-sent replay carries the key of the delivery it
-- replays, so the partner can recognise something it already applied
-- (issue 14). NULL means the delivery's id.
ALTER TABLE deliveries ADD COLUMN partner_key TEXT;
