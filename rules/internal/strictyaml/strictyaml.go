// Package strictyaml reads hand-written YAML files strictly: every error
// names the file, the line and column, and the cause; unknown and duplicate
// keys are errors. It walks yaml.v3 nodes so that positions survive, and
// collects every error of a file rather than stopping at the first.
//
// It deliberately knows nothing of the files' meaning: the partner registry
// and the rule configuration describe their own fields with it.
package strictyaml

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DateLayout is the layout of dates in Custos files (ISO 8601, UTC).
const DateLayout = "2006-01-02"

// maxErrors bounds how many errors one file reports.
const maxErrors = 20

// Error is one problem in a file, with its position.
type Error struct {
	// File is the file name as given to the reader.
	File string
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	// Msg is the cause.
	Msg string
}

// Error formats the error as file:line:column: cause.
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

// Error joins the errors one per line.
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Reader collects the errors found while reading one file.
type Reader struct {
	file string
	errs Errors
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses data as one YAML document and returns a reader for it and
// the document's root node. A syntax error or an empty document is an error.
func Parse(file string, data []byte) (*Reader, *yaml.Node, error) {
	r := &Reader{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		return nil, nil, Errors{{File: file, Line: line, Msg: "invalid YAML: " + msg}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil, Errors{{File: file, Line: 1, Msg: "file is empty"}}
	}
	return r, doc.Content[0], nil
}

// Errorf records an error at node n (or at the top of the file if n is nil).
func (r *Reader) Errorf(n *yaml.Node, format string, args ...any) {
	if len(r.errs) >= maxErrors {
		return
	}
	e := &Error{File: r.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	r.errs = append(r.errs, e)
}

// Err returns the errors recorded so far as Errors, or nil.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs
}

// Failed reports whether any error was recorded.
func (r *Reader) Failed() bool { return len(r.errs) > 0 }

// Field describes one key of a mapping: how to read its value and whether
// it must be present.
type Field struct {
	// Read is called with the value node.
	Read func(v *yaml.Node)
	// Required makes a missing key an error.
	Required bool
}

// Mapping reads the mapping n: each known key's value goes to its field's
// Read, unknown and duplicate keys are errors, as are missing required keys.
// what names the mapping in messages (e.g. "partner").
func (r *Reader) Mapping(n *yaml.Node, what string, fields map[string]Field) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			r.Errorf(n, "%s is empty", what)
		} else {
			r.Errorf(n, "%s must be a mapping of keys to values, not %s", what, kindName(n))
		}
		return
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			r.Errorf(k, "%s: keys must be plain strings", what)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			r.Errorf(k, "%s: duplicate key %q (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		f, ok := fields[k.Value]
		if !ok {
			r.Errorf(k, "%s: unknown key %q (known: %s)", what, k.Value, knownKeys(fields))
			continue
		}
		f.Read(resolve(v))
	}
	for _, name := range sortedKeys(fields) {
		if fields[name].Required && seen[name] == nil {
			r.Errorf(n, "%s: missing required key %q", what, name)
		}
	}
}

// Seq calls item for each element of the sequence n.
func (r *Reader) Seq(n *yaml.Node, what string, item func(i int, v *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		r.Errorf(n, "%s must be a list, not %s", what, kindName(n))
		return
	}
	for i, v := range n.Content {
		item(i, resolve(v))
	}
}

// String reads a scalar string.
func (r *Reader) String(n *yaml.Node, what string) string {
	if !r.scalar(n, what) {
		return ""
	}
	if n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// Strings reads a list of scalar strings; an empty entry is an error.
func (r *Reader) Strings(n *yaml.Node, what string) []string {
	var out []string
	r.Seq(n, what, func(_ int, v *yaml.Node) {
		if !r.scalar(v, what+" entry") {
			return
		}
		if v.Value == "" || v.Tag == "!!null" {
			r.Errorf(v, "%s: empty entry", what)
			return
		}
		out = append(out, v.Value)
	})
	return out
}

// Bool reads a boolean.
func (r *Reader) Bool(n *yaml.Node, what string) bool {
	if !r.scalar(n, what) {
		return false
	}
	if n.Tag != "!!bool" {
		r.Errorf(n, "%s must be true or false, not %q", what, n.Value)
		return false
	}
	b, _ := strconv.ParseBool(strings.ToLower(n.Value))
	return b
}

// Int reads an integer.
func (r *Reader) Int(n *yaml.Node, what string) int64 {
	if !r.scalar(n, what) {
		return 0
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 64)
	if err != nil || n.Tag != "!!int" {
		r.Errorf(n, "%s must be an integer, not %q", what, n.Value)
		return 0
	}
	return v
}

// Duration reads a Go duration such as "10m" or "1h30m".
func (r *Reader) Duration(n *yaml.Node, what string) time.Duration {
	if !r.scalar(n, what) {
		return 0
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		r.Errorf(n, "%s must be a duration such as 10m, 1h or 7d, not %q", what, n.Value)
		return 0
	}
	return d
}

// ParseDuration parses a Go duration ("90m", "1h30m") or a whole number
// of days ("7d"), the unit privacy officers think in.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad number of days %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Date reads a date YYYY-MM-DD as midnight UTC.
func (r *Reader) Date(n *yaml.Node, what string) time.Time {
	if !r.scalar(n, what) {
		return time.Time{}
	}
	t, err := time.Parse(DateLayout, n.Value)
	if err != nil {
		r.Errorf(n, "%s must be a date YYYY-MM-DD, not %q", what, n.Value)
		return time.Time{}
	}
	return t
}

func (r *Reader) scalar(n *yaml.Node, what string) bool {
	if n.Kind != yaml.ScalarNode {
		r.Errorf(n, "%s must be a single value, not %s", what, kindName(n))
		return false
	}
	return true
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "this"
	}
}

func sortedKeys(fields map[string]Field) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	// insertion sort: a handful of keys
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func knownKeys(fields map[string]Field) string { return strings.Join(sortedKeys(fields), ", ") }

// As reports whether err holds at least one *Error, returning the first.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
