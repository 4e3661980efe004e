package synth

import (
	"strconv"
	"strings"
)

// Event size (Config.TargetSize). With a target, each event is shaped
// toward that many bytes of JSON the way producers of different verbosity
// write the same audit record, and only with fields such producers fill:
//
//   - Smaller than its natural form: optional fields a lean producer does
//     not send are left out, in this order, while that brings the event
//     closer to the target: unknown fields, attributes, request.client,
//     schema, source.environment "production", the request object,
//     outcome "success" (the default), data.bytes, legal_basis,
//     recipient.name, actor.department (and actor.kind "user", the
//     default), data.subject_kinds, data.records 1 of a read, update or
//     delete, data.subjects beyond the first (the sample then marked
//     truncated; never the subjects of an incident that names subjects of
//     the status stream). The required fields, data.categories,
//     data.records of other actions, the first subject, purpose, recipient
//     domain, id, country and kind, channel and a staging environment
//     always stay: the leanest events average about 370 B, whatever
//     smaller target is asked.
//   - Larger: a verbose producer adds, in this order and while each
//     addition brings the event closer to the target: request.client (IP
//     address and user agent) when absent; attributes with the trace
//     context (trace_id, span_id), the deployment (k8s.namespace,
//     k8s.pod, cloud.region, service.version), the authentication
//     (auth.method, auth.issuer or auth.principal), the database
//     (db.system, db.name, db.user, db.rows_returned, db.duration_ms) and
//     the HTTP call (http.method, http.route, http.status_code); a longer
//     sample of the subject ids (up to data.records of them,
//     subjects_truncated kept true while the sample is shorter than
//     data.records); db.statement, the SQL statement that read the data
//     (at most 1000 characters); a justification; then more subject ids.
//
// So what the rules look at (type, action, actor id, kind and role,
// source system and dataset, categories, the records of moves and
// queries, the first subject, recipient, channel, purpose, outcome) is
// the same as without a target: what changes is the bytes to decode and
// store and the number of subject ids to pseudonymise. Events about one
// record cannot list more subjects, so they stop growing at about 2.3 KB;
// larger targets are reached only by events with many records (a target
// of 8 KB averages about 2.8 KB). The
// padding draws its values from the event id, not from the generator's
// random stream, so a target leaves the stream's events, order and ids as
// they are.

// Limits of Config.TargetSize (0 turns shaping off).
const (
	MinTargetSize = 200
	MaxTargetSize = 16384
)

// maxPadSubjects is how many subject ids an event lists at most when it is
// padded (the contract allows 1000).
const maxPadSubjects = 500

// Fields an event may leave out, in the order trimming drops them.
const (
	dropUnknown       uint32 = 1 << iota // trace_id, x_pipeline
	dropAttrs                            // attributes
	dropClient                           // request.client
	dropSchema                           // schema
	dropEnv                              // source.environment "production"
	dropRequest                          // the whole request object
	dropOutcome                          // outcome "success"
	dropBytes                            // data.bytes
	dropLegal                            // legal_basis
	dropRecipientName                    // recipient.name
	dropActorDetail                      // actor.department, actor.kind "user"
	dropSubjectKinds                     // data.subject_kinds
	dropOneRecord                        // data.records 1 of a read, update or delete
	dropSubjectSample                    // data.subjects beyond the first (then truncated)
	dropEnd
)

// shape is how one event departs from its natural form. The zero shape
// (or a nil one) writes the natural event.
type shape struct {
	drop     uint32 // drop* bits
	client   bool   // add request.client
	subjects int    // subject ids added after the natural ones
	attrs    []byte // attribute entries added, "k":"v" joined by commas
	nAttrs   int    // entries in attrs
	seed     uint64 // draws of the added values
}

func (s *shape) drops(bit uint32) bool { return s != nil && s.drop&bit != 0 }

// sizer shapes events toward a target size; it keeps its buffers across
// events.
type sizer struct {
	target int
	s      shape
	buf    []byte // measuring
	sql    []byte
}

// appendSized writes e shaped toward z.target.
func (z *sizer) appendSized(b []byte, e *ev) []byte {
	z.s = shape{attrs: z.s.attrs[:0], seed: mix64(e.idHi ^ mix64(e.idLo))}
	s := &z.s
	z.buf = appendEvent(z.buf[:0], e, s)
	n := len(z.buf)
	if n > z.target {
		z.trim(e, n)
	} else if n < z.target {
		z.pad(e, n)
	}
	return appendEvent(b, e, s)
}

// closer reports whether size m is closer to target than size n.
func closer(m, n, target int) bool { return abs(m-target) < abs(n-target) }

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// trim drops optional fields, in order, while that brings the event of n
// bytes closer to the target.
func (z *sizer) trim(e *ev, n int) {
	s := &z.s
	for bit := uint32(1); bit < dropEnd && n > z.target; bit <<= 1 {
		s.drop |= bit
		z.buf = appendEvent(z.buf[:0], e, s)
		m := len(z.buf)
		if m == n || !closer(m, n, z.target) {
			s.drop &^= bit // absent, or it would overshoot
			continue
		}
		n = m
	}
}

// pad adds what a verbose producer sends to the event of n bytes, while
// each addition brings it closer to the target.
func (z *sizer) pad(e *ev, n int) {
	s := &z.s
	want := z.target - n // bytes still wanted
	take := func(size int) bool {
		if size <= 0 || size >= 2*want {
			return false
		}
		want -= size
		return true
	}
	a := e.actor
	if !e.client {
		size := len(`,"client":{"ip":"","user_agent":""}`) + len(a.ip) + len(a.ua)
		s.client = take(size)
	}
	h := s.seed
	next := func() uint64 { h = mix64(h + 0x9e3779b97f4a7c15); return h }

	// Attribute groups; each is taken whole or not at all.
	var grp attrGroup
	grp.reset(e, s)
	grp.add("trace_id", hex(next(), 16)+hex(next(), 16))
	grp.add("span_id", hex(next(), 16))
	grp.commit(take)

	ds := e.ds
	grp.reset(e, s)
	grp.add("k8s.namespace", ds.system)
	grp.add("k8s.pod", ds.system+"-"+hex(next(), 9)+"-"+podSuffix(next()))
	grp.add("cloud.region", regions[next()%uint64(len(regions))])
	v := next()
	grp.add("service.version", strconv.Itoa(int(1+v%7))+"."+strconv.Itoa(int(v>>8%40))+"."+strconv.Itoa(int(v>>16%12)))
	grp.commit(take)

	grp.reset(e, s)
	if a.service {
		grp.add("auth.method", "mtls")
		grp.add("auth.principal", "spiffe://northwind-health.example/ns/"+a.role.dept+"/sa/"+a.id)
	} else {
		grp.add("auth.method", "oidc")
		grp.add("auth.issuer", "https://login.northwind-health.example/realms/staff")
		grp.add("auth.session_age_s", strconv.Itoa(int(next()%28800)))
	}
	grp.commit(take)

	grp.reset(e, s)
	grp.add("db.system", dbSystem(ds.system))
	grp.add("db.name", sqlName(ds.system))
	grp.add("db.user", dbUser(a))
	grp.add("db.rows_returned", strconv.FormatInt(max(e.records, 1), 10))
	grp.add("db.duration_ms", strconv.Itoa(int(1+next()%900)))
	grp.commit(take)

	grp.reset(e, s)
	method, route := httpCall(e)
	grp.add("http.method", method)
	grp.add("http.route", route)
	grp.add("http.status_code", httpStatus(e))
	grp.commit(take)

	// A longer sample of subject ids, up to 40% of what is still wanted.
	perSubj := len(ds.prefix) + 10 // ,"prefix0000000"
	room := maxPadSubjects - e.nSubj
	if e.records > int64(e.nSubj) {
		room = min(room, int(e.records)-e.nSubj)
	} else {
		room = 0
	}
	if k := min(room, want*2/5/perSubj); k > 0 && take(k*perSubj) {
		s.subjects = k
		room -= k
	}

	// The SQL statement that read the data.
	if want > 120 {
		z.sql = appendSQL(z.sql[:0], e, next, min(1000, want-len(`,"db.statement":""`)-1))
		grp.reset(e, s)
		grp.add("db.statement", string(z.sql))
		grp.commit(take)
	}
	if !a.service && want > 60 {
		grp.reset(e, s)
		grp.add("justification", justifications[next()%uint64(len(justifications))])
		grp.commit(take)
	}
	// The rest: more subject ids, when the event touched that many.
	if k := min(room, want/perSubj); k > 0 && take(k*perSubj) {
		s.subjects += k
	}
}

// attrGroup builds a group of attribute entries onto a shape.
type attrGroup struct {
	s     *shape
	start int // len(s.attrs) before the group
	n     int // entries in the group
	size  int // bytes the group adds to the event
	first bool
}

func (g *attrGroup) reset(e *ev, s *shape) {
	*g = attrGroup{s: s, start: len(s.attrs), first: s.nAttrs == 0 && (e.attrs == nil || s.drops(dropAttrs))}
	if g.first {
		g.size = len(`,"attributes":{}`)
	}
}

func (g *attrGroup) add(k, v string) {
	if g.s.nAttrs+g.n > 0 {
		g.s.attrs = append(g.s.attrs, ',')
	}
	g.s.attrs = appendStr(g.s.attrs, k)
	g.s.attrs = append(g.s.attrs, ':')
	g.s.attrs = appendStr(g.s.attrs, v)
	g.n++
	g.size += len(k) + len(v) + 5
	if !g.first || g.n > 1 {
		g.size++ // the comma before it
	}
}

// commit keeps the group if take accepts its size, else removes it.
func (g *attrGroup) commit(take func(int) bool) {
	if g.n > 0 && take(g.size) {
		g.s.nAttrs += g.n
		return
	}
	g.s.attrs = g.s.attrs[:g.start]
}

// mix64 is SplitMix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func hex(x uint64, n int) string { return string(appendHex(nil, x, n)) }

// podSuffix is the five-character suffix of a Kubernetes pod name.
func podSuffix(x uint64) string {
	const alnum = "bcdfghjklmnpqrstvwxz2456789"
	var b [5]byte
	for i := range b {
		b[i] = alnum[x%uint64(len(alnum))]
		x /= uint64(len(alnum))
	}
	return string(b[:])
}

// dbSystem is the database behind a source system.
func dbSystem(system string) string {
	switch system {
	case "dwh", "analytics", "feature-store":
		return "clickhouse"
	case "support-desk", "document-store", "call-center":
		return "mongodb"
	}
	return "postgresql"
}

// dbUser is the database role an actor connects as.
func dbUser(a *actor) string {
	if a.service {
		return "svc_" + a.role.name
	}
	return "ro_" + a.role.name
}

var regions = []string{"eu-central-1", "eu-central-1", "eu-west-1", "eu-north-1"}

// httpCall is the API call behind the event's action.
func httpCall(e *ev) (method, route string) {
	base := "/api/v2/" + e.ds.name
	switch e.action {
	case "read":
		return "GET", base + "/{id}"
	case "query":
		return "GET", base + "/search"
	case "export", "download":
		return "POST", base + "/exports"
	case "update":
		return "PATCH", base + "/{id}"
	case "delete":
		return "DELETE", base + "/{id}"
	}
	return "POST", "/api/v2/transfers/" + e.ds.name // transfer
}

func httpStatus(e *ev) string {
	switch e.outcome {
	case "denied":
		return "403"
	case "failure":
		return "503"
	}
	if e.action == "export" || e.action == "transfer" {
		return "201"
	}
	return "200"
}

var justifications = []string{
	"Customer asked for an update of their contact details by phone",
	"Monthly reporting for the management board, agreed with the data owner",
	"Investigating a failed payment reported by the customer",
	"Answering a data subject access request within the legal deadline",
	"Reconciliation of open invoices before the month-end close",
	"Follow-up of a complaint escalated by the customer care team lead",
	"Quality check of the campaign audience before sending",
	"Incident analysis requested by the on-call engineer",
}

// Columns and conditions the SQL statements draw from, beyond the
// columns of the dataset's categories.
var (
	sqlColumns = []string{"id", "tenant_id", "created_at", "updated_at", "status", "country_code",
		"source_channel", "consent_version", "marketing_opt_in", "last_login_at", "locale",
		"segment", "lifetime_value_eur", "churn_score", "plan", "risk_flag", "region",
		"external_ref", "deleted_at", "owner_team", "preferred_contact_method", "timezone",
		"referral_code", "acquisition_campaign", "first_order_at", "last_order_at", "order_count",
		"support_tier", "kyc_status", "data_retention_class", "legal_hold", "row_version"}
	sqlConditions = []string{"tenant_id = 'nw-eu'", "deleted_at IS NULL", "status IN ('active', 'pending', 'suspended')",
		"updated_at >= '2026-02-01 00:00:00'", "country_code IN ('DE', 'AT', 'CH', 'NL', 'BE')",
		"marketing_opt_in = true", "segment <> 'internal_test'", "lifetime_value_eur > 0",
		"risk_flag = false", "created_at < now() - INTERVAL 30 DAY", "locale LIKE 'de%'",
		"owner_team = 'customer-care'", "plan IN ('family', 'premium', 'basic')",
		"legal_hold = false", "kyc_status IN ('verified', 'pending_review')", "order_count >= 1",
		"data_retention_class <> 'purge_scheduled'", "support_tier IN ('standard', 'priority')",
		"last_order_at BETWEEN '2025-09-01' AND '2026-03-01'", "acquisition_campaign NOT LIKE 'test_%'",
		"timezone IN ('Europe/Berlin', 'Europe/Vienna', 'Europe/Zurich')"}
)

// appendSQL writes a SELECT over e's dataset of at most limit bytes (and at
// least a minimal statement): the columns of its categories, then more
// columns and conditions while they fit.
func appendSQL(b []byte, e *ev, next func() uint64, limit int) []byte {
	cols := e.cats
	if cols == nil {
		cols = e.ds.cats
	}
	b = append(b, "SELECT "...)
	for i, c := range cols {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, columnOf(c)...)
	}
	from := " FROM " + sqlName(e.ds.system) + "." + e.ds.name
	tail := " LIMIT " + strconv.FormatInt(max(e.records, 1), 10)
	// More columns while the statement still fits.
	off := int(next() % uint64(len(sqlColumns)))
	for i := range sqlColumns {
		c := sqlColumns[(off+i)%len(sqlColumns)]
		if len(b)+2+len(c)+len(from)+len(tail) > limit/2 {
			break
		}
		b = append(b, ", "...)
		b = append(b, c...)
	}
	b = append(b, from...)
	off = int(next() % uint64(len(sqlConditions)))
	for i := range sqlConditions {
		c := sqlConditions[(off+i)%len(sqlConditions)]
		sep := " AND "
		if i == 0 {
			sep = " WHERE "
		}
		if len(b)+len(sep)+len(c)+len(tail) > limit {
			break
		}
		b = append(b, sep...)
		b = append(b, c...)
	}
	return append(b, tail...)
}

// sqlName is a system's name as a SQL schema name.
func sqlName(system string) string { return strings.ReplaceAll(system, "-", "_") }

// columnOf names the column holding a category: its last one or two
// segments ("user.contact.email" is email, "user.contact.address.city"
// address_city).
func columnOf(cat string) string {
	last, prev := cat, ""
	for i := len(cat) - 1; i >= 0; i-- {
		if cat[i] == '.' {
			last = cat[i+1:]
			prev = cat[:i]
			break
		}
	}
	for i := len(prev) - 1; i >= 0; i-- {
		if prev[i] == '.' {
			prev = prev[i+1:]
			break
		}
	}
	switch prev {
	case "address", "demographic", "financial", "government_id", "device", "location", "behavior":
		return prev + "_" + last
	}
	return last
}
