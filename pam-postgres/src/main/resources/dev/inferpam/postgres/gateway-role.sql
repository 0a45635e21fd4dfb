-- The role replicas connect as (state.postgres.migrate: false), with the least it needs: it
-- reads the schema's history, keeps reviews (opens, ends; never deletes one) and its own
-- bookkeeping rows. Run as the schema's owner after the migrations; replace the password.
-- pam-postgres's tests run every test under this role, from this very file.
CREATE ROLE inferpam_gateway LOGIN PASSWORD 'change-me';
GRANT USAGE ON SCHEMA inferpam TO inferpam_gateway;
GRANT SELECT ON inferpam.schema_history TO inferpam_gateway;
GRANT SELECT, INSERT, UPDATE ON inferpam.reviews TO inferpam_gateway;
GRANT SELECT, INSERT, DELETE ON inferpam.review_waiters TO inferpam_gateway;
GRANT SELECT, INSERT, UPDATE, DELETE ON inferpam.replicas TO inferpam_gateway;
