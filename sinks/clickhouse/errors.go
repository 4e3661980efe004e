package clickhouse

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// Sentinel errors.
var (
	// ErrInvalidConfig is wrapped by every error Config.Validate returns.
	ErrInvalidConfig = errors.New("invalid clickhouse config")
	// ErrClosed is returned by a Store used after Close.
	ErrClosed = errors.New("clickhouse store closed")
)

// Server error codes that Custos treats as transient: retrying the same
// insert later can succeed.
var transientCodes = map[int32]bool{
	159: true, // TIMEOUT_EXCEEDED
	164: true, // READONLY (e.g. while a replica reconnects)
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	319: true, // UNKNOWN_STATUS_OF_INSERT
	425: true, // SYSTEM_ERROR
	999: true, // KEEPER_EXCEPTION
}

// Error classes returned by Classify, for metrics labels.
const (
	ClassNone       = "none"
	ClassCanceled   = "canceled"
	ClassConnection = "connection"
	ClassServer     = "server"
	ClassTransient  = "server_transient"
	ClassOther      = "other"
)

// Classify sorts err into one of a few classes, for metrics labels:
// none, canceled, connection, server_transient, server, other.
func Classify(err error) string {
	var ex *ch.Exception
	switch {
	case err == nil:
		return ClassNone
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ClassCanceled
	case errors.As(err, &ex):
		if transientCodes[ex.Code] {
			return ClassTransient
		}
		return ClassServer
	case isConnectionError(err):
		return ClassConnection
	}
	return ClassOther
}

// IsTransient reports whether retrying the operation that failed with err
// may succeed: a lost or refused connection, a timeout, or a server error
// such as TOO_MANY_PARTS. Context cancellation is not transient.
func IsTransient(err error) bool {
	switch Classify(err) {
	case ClassConnection, ClassTransient:
		return true
	}
	return false
}

// ServerCode returns the ClickHouse error code carried by err, or 0.
func ServerCode(err error) int32 {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		return ex.Code
	}
	return 0
}

func isConnectionError(err error) bool {
	var ne net.Error
	var oe *ch.OpError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, ch.ErrAcquireConnTimeout):
		return true
	case errors.As(err, &ne):
		return true
	case errors.As(err, &oe):
		return oe.Err != nil && isConnectionError(oe.Err)
	}
	return false
}
