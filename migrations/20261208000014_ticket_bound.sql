-- Tickets per user are bounded: the count of a user's open (unspent, unexpired) tickets is
-- read on every issue.
CREATE INDEX ws_tickets_open_by_user ON ws_tickets (user_id, expires_at) WHERE used_at IS NULL;
