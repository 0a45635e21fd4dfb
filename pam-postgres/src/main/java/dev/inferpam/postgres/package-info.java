/**
 * inferpam state in PostgreSQL: the connection pool and schema ({@link
 * dev.inferpam.postgres.PostgresState}), reviews shared by a fleet ({@link
 * dev.inferpam.postgres.PostgresApprovalService}).
 */
package dev.inferpam.postgres;
