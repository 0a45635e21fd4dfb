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
-- Records (recording.store: postgres) are append-only for this role: it inserts and reads them,
-- and never updates or deletes one (nor truncates or drops: it owns no table). It creates the
-- day partitions it writes into through a function that runs as the schema's owner; dropping
-- old partitions (retention) is the owner's: inferpam.drop_record_partitions is not granted here.
GRANT SELECT, INSERT ON inferpam.records TO inferpam_gateway;
GRANT SELECT ON inferpam.record_retention TO inferpam_gateway;
GRANT EXECUTE ON FUNCTION inferpam.create_record_partitions(date, integer) TO inferpam_gateway;
