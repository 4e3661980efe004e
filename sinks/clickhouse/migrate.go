package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// Migration is one step of the schema. Steps are applied in order, each
// once; every statement is idempotent (IF NOT EXISTS), so a step cut short
// by a crash is simply run again.
type Migration struct {
	// Version numbers the step, from 1, without gaps.
	Version uint32
	// Name says what the step does.
	Name string
	// statements renders the step's DDL for a database and server.
	statements func(db string, f features) []string
	// needed, when set, says whether the database needs the step at all;
	// a step it does not need is recorded without running its statements.
	needed func(ctx context.Context, s *Store) (bool, error)
}

// Migrations is the schema history, oldest first. Append; never edit a
// released step.
var Migrations = []Migration{
	{Version: 1, Name: "events, event_offsets, subject_index, alerts, subject_status", statements: createTables},
	{Version: 2, Name: "skip indexes on events (21.1+)", statements: addSkipIndexes},
	{Version: 3, Name: "narrow subject_index (subject, time, actor_id, event_id), rebuilt from events", statements: narrowSubjectIndex, needed: wideSubjectIndexPresent},
}

// Statements returns the DDL that Migrate runs on a server of version v
// for database db, from scratch: the schema_migrations table, then every
// migration. It lets tests run the same statements elsewhere (chDB).
func Statements(db string, v Version) []string {
	out := []string{createDatabase(db), createMigrationsTable(db)}
	f := featuresOf(v)
	for _, m := range Migrations {
		out = append(out, m.statements(db, f)...)
	}
	return out
}

func createDatabase(db string) string {
	return "CREATE DATABASE IF NOT EXISTS " + db
}

func createMigrationsTable(db string) string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version`, db)
}

// Migrate brings the schema up to date: it applies, in order, the
// migrations not yet recorded in schema_migrations and records each. Running
// it again is a no-op. A migration with nothing to do on this server (e.g.
// skip indexes on 18.16) is not recorded, so it runs after a server upgrade.
// Concurrent Migrate calls are safe: every statement is idempotent.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.conn.Exec(ctx, createMigrationsTable(s.db)); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := s.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	done := make(map[uint32]bool, len(applied))
	for _, v := range applied {
		done[v] = true
	}
	f := featuresOf(s.version)
	for _, m := range Migrations {
		if done[m.Version] {
			continue
		}
		stmts := m.statements(s.db, f)
		if len(stmts) == 0 {
			continue
		}
		if m.needed != nil {
			need, err := m.needed(ctx, s)
			if err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			if !need {
				stmts = nil
			}
		}
		for i, q := range stmts {
			if err := s.conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("migration %d (%s) statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		s.log.Info("clickhouse migration applied", "version", m.Version, "name", m.Name, "server", s.version.String())
	}
	return nil
}

// wideSubjectIndexPresent reports whether subject_index is the 20-column
// table of the first release, which migration 3 narrows.
func wideSubjectIndexPresent(ctx context.Context, s *Store) (bool, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = 'subject_index'", s.db).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read subject_index columns: %w", err)
	}
	return n > uint64(len(subjectRefColumns())), nil
}

// AppliedMigrations returns the versions recorded in schema_migrations,
// ascending.
func (s *Store) AppliedMigrations(ctx context.Context) ([]uint32, error) {
	var out []uint32
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT version FROM %s.schema_migrations ORDER BY version", s.db))
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return out, nil
}

// recordMigration inserts m's row. A batch, not INSERT ... VALUES with
// bound arguments: 18.16 waits for a data block after such an INSERT over
// the native protocol.
func (s *Store) recordMigration(ctx context.Context, m Migration) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".schema_migrations (version, name, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(m.Version, m.Name, time.Now().UTC()); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}
