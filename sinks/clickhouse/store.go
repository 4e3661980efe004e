// Package clickhouse is Custos's ClickHouse sink: it creates and migrates the
// schema, writes events, alerts and subject status changes in large columnar
// batches, reads back what the ingest path needs to recover after a crash or
// rebalance (stored offsets, recent events, alert ids), and holds the privacy
// office's forensic queries.
//
// It knows the event contract and the alert type, not Kafka: the Kafka
// coordinates it stores come from event.Origin. It does not pseudonymise:
// subject ids arrive pseudonymised from ingest, and nothing here logs event
// contents.
//
// Every statement is valid on ClickHouse 18.16 (what CI runs) and on
// current releases; newer features are used only when the server has them.
//
// Delivery: an INSERT of one block is atomic per partition (calendar month
// of event time) only, so a failed InsertEvents may have stored some months
// and not others. The caller retries the whole call after skipping the
// offsets StoredOffsets reports, which InsertEvents also does itself on its
// own retries; rows of an interrupted insert that were stored without
// their offsets (a crash between the table and its views) share their
// sorting key with the retried copy, are collapsed by ReplacingMergeTree,
// and until then are counted once by the queries here (LIMIT 1 BY event_id,
// uniqExact).
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Store is a connection pool to ClickHouse bound to Custos's database. It is
// safe for concurrent use.
type Store struct {
	cfg     Config
	db      string
	conn    driver.Conn
	version Version
	log     *slog.Logger

	// columns buffers reused across inserts.
	eventBufs  sync.Pool
	alertBufs  sync.Pool
	statusBufs sync.Pool

	// beforeSend and afterSend, when set (tests), run around each insert
	// attempt's Send; an error they return fails the attempt.
	beforeSend func(table string, attempt int) error
	afterSend  func(table string, attempt int) error
}

// codeUnknownDatabase is ClickHouse's UNKNOWN_DATABASE.
const codeUnknownDatabase = 81

// Open validates cfg, connects, and creates the database when it is
// missing. It does not create tables: call Migrate.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	conn, err := connect(ctx, cfg, cfg.Database)
	if ServerCode(err) == codeUnknownDatabase {
		boot, berr := connect(ctx, cfg, "default")
		if berr != nil {
			return nil, fmt.Errorf("connect to clickhouse %v to create database %s: %w", cfg.Addr, cfg.Database, berr)
		}
		berr = boot.Exec(ctx, createDatabase(cfg.Database))
		_ = boot.Close()
		if berr != nil {
			return nil, fmt.Errorf("create database %s: %w", cfg.Database, berr)
		}
		conn, err = connect(ctx, cfg, cfg.Database)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to clickhouse %v database %s: %w", cfg.Addr, cfg.Database, err)
	}
	sv, err := conn.ServerVersion()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse server version: %w", err)
	}
	s := &Store{
		cfg:     cfg,
		db:      cfg.Database,
		conn:    conn,
		version: Version{int(sv.Version.Major), int(sv.Version.Minor)},
		log:     cfg.Logger,
	}
	s.eventBufs.New = func() any { return new(eventBuf) }
	s.alertBufs.New = func() any { return new(alertBuf) }
	s.statusBufs.New = func() any { return new(statusBuf) }
	return s, nil
}

func connect(ctx context.Context, cfg Config, db string) (driver.Conn, error) {
	opts := &ch.Options{
		Addr: cfg.Addr,
		Auth: ch.Auth{
			Database: db,
			Username: cfg.Username,
			Password: cfg.Password,
		},
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
	}
	if cfg.Compression {
		opts.Compression = &ch.Compression{Method: ch.CompressionLZ4}
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("close clickhouse: %w", err)
	}
	return nil
}

// ServerVersion returns the server's major and minor version, as read when
// the store was opened.
func (s *Store) ServerVersion() (major, minor int) {
	return s.version.Major, s.version.Minor
}

// Database returns the name of the database the store writes to.
func (s *Store) Database() string { return s.db }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping clickhouse: %w", err)
	}
	return nil
}
