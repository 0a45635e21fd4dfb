-- inferpam schema 1: reviews shared by the replicas of a fleet (PostgresApprovalService).
-- Applied by Flyway into the schema "inferpam" (state.postgres.migrate: true, the default).

-- Replicas alive: each writes its time here every poll interval. A replica not seen for a while
-- is dead: its callers are gone, and reviews nobody else waits for are withdrawn.
CREATE TABLE replicas (
  id      text PRIMARY KEY,
  started timestamptz NOT NULL,
  seen    timestamptz NOT NULL
);

-- One row per review. A row is written once when the review opens and once when it ends
-- (status leaves 'waiting'); it is never deleted by the gateway.
CREATE TABLE reviews (
  id            text PRIMARY KEY,
  seq           bigint GENERATED ALWAYS AS IDENTITY,  -- creation order, for equal times
  principal_key text NOT NULL,   -- via, issuer and subject: one principal
  subject       text NOT NULL,   -- nobody decides a request made under their own subject
  principal     jsonb NOT NULL,  -- subject, groups, via, issuer (never attributes)
  rule          text NOT NULL,
  digest        text NOT NULL,
  request       jsonb NOT NULL,  -- method, path, query, body (base64), remote address; no headers
  created       timestamptz NOT NULL,
  expires       timestamptz NOT NULL,
  status        text NOT NULL CHECK (status IN
                  ('waiting', 'approved', 'rejected', 'expired', 'withdrawn', 'closed')),
  reviewer      text,
  reason        text,
  decided       timestamptz
);
-- an identical request (same principal, rule and digest) joins the waiting review
CREATE UNIQUE INDEX reviews_one_waiting ON reviews (principal_key, rule, digest)
  WHERE status = 'waiting';
CREATE INDEX reviews_waiting_created ON reviews (created) WHERE status = 'waiting';
-- grants: the latest approval of a principal under a rule
CREATE INDEX reviews_approved ON reviews (principal_key, rule, decided)
  WHERE status = 'approved';

-- Which replicas hold callers waiting for a review (the callers themselves are in memory there).
CREATE TABLE review_waiters (
  review_id text NOT NULL REFERENCES reviews (id),
  replica   text NOT NULL,
  PRIMARY KEY (review_id, replica)
);
CREATE INDEX review_waiters_replica ON review_waiters (replica);
