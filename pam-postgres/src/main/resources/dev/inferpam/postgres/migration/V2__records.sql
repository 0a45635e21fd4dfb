-- inferpam schema 2: records of recording.store: postgres (PostgresRecorder).
-- Applied by Flyway into the schema "inferpam" by the schema's owner.

-- A line is stored as text and its hash re-checked over its UTF-8 bytes: the database must keep
-- UTF-8 text as it is given.
DO $$
BEGIN
  IF current_setting('server_encoding') <> 'UTF8' THEN
    RAISE EXCEPTION 'inferpam records need a UTF8 database, this one is %',
      current_setting('server_encoding');
  END IF;
END
$$;

-- One row per record line. Every writer (a recorder: one per replica start) keeps its own hash
-- chain: seq 1, 2, 3... and prev = the hash of its row seq - 1 (64 zeros for seq 1). The line is
-- the exact JSONL line of docs/recording.md, so its hash is re-checked byte for byte; id, type,
-- subject and time are copied from it for queries. Partitioned by day (UTC) of "written", the
-- writer's clock when it wrote the row: a writer's rows go to partitions in seq order, so dropping
-- old partitions removes the start of each chain, never a piece of its middle.
CREATE TABLE records (
  writer  text        NOT NULL,
  seq     bigint      NOT NULL CHECK (seq > 0),
  written timestamptz NOT NULL,
  prev    text        NOT NULL CHECK (prev ~ '^[0-9a-f]{64}$'),
  hash    text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  id      text        NOT NULL,
  type    text        NOT NULL,
  subject text,
  time    timestamptz NOT NULL,
  line    text        NOT NULL,
  PRIMARY KEY (writer, seq, written)
) PARTITION BY RANGE (written);
-- A line of a few KB is compressed when stored: with lz4 (when the server has it), which costs
-- far less than the default pglz at the rates records arrive.
DO $$
BEGIN
  ALTER TABLE records ALTER COLUMN line SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  RAISE NOTICE 'lz4 is not available: record lines are compressed with pglz';
END
$$;
CREATE INDEX records_id ON records (id);
CREATE INDEX records_time ON records (time);
CREATE INDEX records_subject_time ON records (subject, time);

-- What retention dropped: per dropped partition and writer, the last row it held. The remaining
-- chain of that writer starts at through_seq + 1 with prev = through_hash.
CREATE TABLE record_retention (
  writer       text        NOT NULL,
  through_seq  bigint      NOT NULL,
  through_hash text        NOT NULL,
  rows         bigint      NOT NULL,
  partition    text        NOT NULL,
  dropped      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (writer, through_seq)
);

-- The partitions of days first .. first + days - 1 (UTC), created when missing. Runs as the
-- schema's owner (SECURITY DEFINER), so the partitions belong to the owner and the gateway role,
-- which may only call this, cannot change or drop them.
CREATE FUNCTION create_record_partitions(first date, days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = inferpam, pg_temp SET TimeZone = 'UTC'
AS $$
DECLARE
  d date;
  name text;
  made integer := 0;
BEGIN
  IF days < 1 OR days > 31 THEN
    RAISE EXCEPTION 'days must be 1 to 31, was %', days;
  END IF;
  -- one creator at a time fleet-wide: two replicas starting a new day together
  PERFORM pg_advisory_xact_lock(1887436801);
  FOR i IN 0 .. days - 1 LOOP
    d := first + i;
    name := 'records_' || to_char(d, 'YYYYMMDD');
    IF to_regclass('inferpam.' || name) IS NULL THEN
      EXECUTE format(
        'CREATE TABLE inferpam.%I PARTITION OF inferpam.records FOR VALUES FROM (%L) TO (%L)',
        name, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
      made := made + 1;
    END IF;
  END LOOP;
  RETURN made;
END
$$;

-- Drops the partitions whose every row was written before "before" (whole UTC days), oldest
-- first, noting in record_retention where each writer's remaining chain starts. Only the schema's
-- owner may run it (EXECUTE is not granted to the gateway role): a periodic job, e.g.
--   SELECT inferpam.drop_record_partitions(now() - interval '30 days');
-- Returns the names of the partitions dropped.
CREATE FUNCTION drop_record_partitions(before timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = inferpam, pg_temp SET TimeZone = 'UTC'
AS $$
DECLARE
  p record;
BEGIN
  PERFORM pg_advisory_xact_lock(1887436801);
  FOR p IN
    SELECT c.relname AS name, to_date(substr(c.relname, 9), 'YYYYMMDD') AS day
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE i.inhparent = 'inferpam.records'::regclass
       AND n.nspname = 'inferpam'
       AND c.relname ~ '^records_[0-9]{8}$'
     ORDER BY c.relname
  LOOP
    EXIT WHEN (p.day + 1)::timestamp AT TIME ZONE 'UTC' > before;
    EXECUTE format(
      'INSERT INTO inferpam.record_retention (writer, through_seq, through_hash, rows, partition)'
      || ' SELECT DISTINCT ON (writer) writer, seq, hash,'
      || ' count(*) OVER (PARTITION BY writer), %L'
      || ' FROM inferpam.%I ORDER BY writer, seq DESC',
      p.name, p.name);
    EXECUTE format('DROP TABLE inferpam.%I', p.name);
    RETURN NEXT p.name;
  END LOOP;
END
$$;

REVOKE ALL ON FUNCTION create_record_partitions(date, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION drop_record_partitions(timestamptz) FROM PUBLIC;
