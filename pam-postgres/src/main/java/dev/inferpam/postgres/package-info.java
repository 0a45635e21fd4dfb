/**
 * inferpam state in PostgreSQL: the connection pool and schema ({@link
 * dev.inferpam.postgres.PostgresState}), reviews shared by a fleet ({@link
 * dev.inferpam.postgres.PostgresApprovalService}), and records ({@link
 * dev.inferpam.postgres.PostgresRecorder} writes them, one hash chain per writer; {@link
 * dev.inferpam.postgres.PostgresRecords} reads and verifies them).
 */
package dev.inferpam.postgres;
