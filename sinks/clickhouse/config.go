package clickhouse

import (
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"
)

// Config says how to reach ClickHouse and how hard to try. The zero value of
// every field means its documented default; call Validate (Open does) to
// check it.
type Config struct {
	// Addr lists the native-protocol addresses (host:port) of the servers.
	// Default ["127.0.0.1:9000"].
	Addr []string
	// Database is the database Custos owns; Open creates it when it is
	// missing. Only letters, digits and underscores. Default "custos".
	Database string
	// Username is the ClickHouse user. Default "default".
	Username string
	// Password is the user's password. Default empty.
	Password string
	// DialTimeout bounds opening one connection. Default 5s.
	DialTimeout time.Duration
	// ReadTimeout bounds waiting for the server on one read. Default 60s.
	ReadTimeout time.Duration
	// MaxOpenConns is the connection pool size; one insert holds one
	// connection. Default 8.
	MaxOpenConns int
	// MaxRetries is how many times a failed insert is retried when the
	// error is transient (network, timeout, too many parts); 0 means the
	// default, a negative value disables retries. Default 5.
	MaxRetries int
	// RetryBackoff is the first wait between retries; it doubles on every
	// retry up to MaxRetryBackoff. Default 200ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the wait between retries. Default 5s.
	MaxRetryBackoff time.Duration
	// Compression turns LZ4 compression of the native protocol on. It
	// costs client CPU and saves bandwidth: on loopback leave it off.
	// Default false.
	Compression bool
	// Logger receives the store's few log lines (never event contents).
	// Default slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultAddr            = "127.0.0.1:9000"
	DefaultDatabase        = "custos"
	DefaultUsername        = "default"
	DefaultDialTimeout     = 5 * time.Second
	DefaultReadTimeout     = 60 * time.Second
	DefaultMaxOpenConns    = 8
	DefaultMaxRetries      = 5
	DefaultRetryBackoff    = 200 * time.Millisecond
	DefaultMaxRetryBackoff = 5 * time.Second
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if len(c.Addr) == 0 {
		c.Addr = []string{DefaultAddr}
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	return c
}

// Validate reports the first problem with c, after defaults are applied.
// The errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, a := range c.Addr {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%w: addr %q is not host:port: %w", ErrInvalidConfig, a, err)
		}
	}
	if !identRE.MatchString(c.Database) {
		return fmt.Errorf("%w: database %q must be letters, digits and underscores, not starting with a digit", ErrInvalidConfig, c.Database)
	}
	switch {
	case c.DialTimeout < 0:
		return fmt.Errorf("%w: dial timeout %s is negative", ErrInvalidConfig, c.DialTimeout)
	case c.ReadTimeout < 0:
		return fmt.Errorf("%w: read timeout %s is negative", ErrInvalidConfig, c.ReadTimeout)
	case c.MaxOpenConns < 0:
		return fmt.Errorf("%w: max open conns %d is negative", ErrInvalidConfig, c.MaxOpenConns)
	case c.RetryBackoff < 0:
		return fmt.Errorf("%w: retry backoff %s is negative", ErrInvalidConfig, c.RetryBackoff)
	case c.MaxRetryBackoff < c.RetryBackoff:
		return fmt.Errorf("%w: max retry backoff %s is below retry backoff %s", ErrInvalidConfig, c.MaxRetryBackoff, c.RetryBackoff)
	}
	return nil
}
