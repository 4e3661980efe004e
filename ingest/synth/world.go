package synth

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// world is the simulated company, built once from the catalogue and the
// seed.
type world struct {
	seed      uint64
	customers int
	datasets  map[string]*dataset
	employees []*actor
	services  []*actor
	groups    []*shiftGroup
	partners  map[string]*partnerRT
	pfile     *PartnerFile
	used      map[*actor]bool // employees already cast in an incident
}

// dataset is a datasetSpec with its precomputed JSON fragments.
type dataset struct {
	datasetSpec
	prefix   string   // subject id prefix
	nSubj    int      // size of the subject population
	srcJSON  []byte   // "source":{...}
	stgJSON  []byte   // same, environment staging
	bareJSON []byte   // same, without environment
	catJSON  [][]byte // a few category subsets as JSON arrays
	skJSON   []byte   // "subject_kinds":["..."]
	catLists [][]string
}

// actor is an employee or a service account.
type actor struct {
	id        string
	key       []byte
	service   bool
	role      *roleRT
	loc       *locationSpec
	ip        string
	ua        string
	weight    float64
	group     *shiftGroup // employees only
	actorJSON []byte      // "actor":{...}
	attrJSON  []byte      // "attributes":{...} for services, nil for users
	hour      int64       // clock hour of hourRecs
	hourRecs  int64       // records moved in that hour
}

// roleRT is a role with its activities resolved.
type roleRT struct {
	name, dept string
	acts       []*activity
	pick       picker
}

// activity is an actSpec resolved against the world.
type activity struct {
	actSpec
	ds      *dataset
	partner *partnerRT
	// shares are the ways this activity can share under the partner's
	// agreements (one per agreement that covers some of the dataset's
	// categories).
	shares []*shareOpt
}

// partnerRT is a registry entry ready for use by the generator.
type partnerRT struct {
	Partner
}

// shareOpt is a precomputed way to share a dataset under one agreement.
type shareOpt struct {
	ag       *Agreement
	p        *partnerRT
	catJSON  []byte
	cats     []string
	domains  []string // per channel
	channels []string
	// countries are the agreement's countries that normal traffic uses
	// (all but reservedCountries).
	countries []string
	purpose   string
	legal     string
}

// shiftGroup is a set of employees with the same location and shift; the
// generator picks a group by the hour of the week, then an employee in it.
type shiftGroup struct {
	members []*actor
	pick    picker
	total   float64
	loc     *locationSpec
	shift   shiftKind
	start   int // local start hour
	daysOff int // first of two consecutive days off (support rota), 0=Monday
}

func buildWorld(c Config) *world {
	rng := rand.New(rand.NewPCG(uint64(c.Seed), 0x5eed))
	w := &world{
		seed:      uint64(c.Seed),
		customers: c.Customers,
		datasets:  map[string]*dataset{},
		partners:  map[string]*partnerRT{},
		used:      map[*actor]bool{},
	}
	pops := map[string]int{
		"customer": c.Customers, "prospect": 400_000, "employee": c.Employees,
		"job_applicant": 60_000, "patient": 310_000, "child": 45_000,
	}
	for _, s := range datasetSpecs {
		d := &dataset{datasetSpec: s, prefix: subjectPrefix[s.skind], nSubj: pops[s.skind]}
		d.srcJSON = []byte(`"source":{"system":"` + s.system + `","dataset":"` + s.name + `","environment":"production"}`)
		d.stgJSON = []byte(`"source":{"system":"` + s.system + `","dataset":"` + s.name + `","environment":"staging"}`)
		d.bareJSON = []byte(`"source":{"system":"` + s.system + `","dataset":"` + s.name + `"}`)
		d.skJSON = []byte(`"subject_kinds":["` + s.skind + `"]`)
		// Subsets: all categories, then each prefix of length >= 2, then
		// single categories.
		d.catLists = append(d.catLists, s.cats)
		for n := len(s.cats) - 1; n >= 2; n-- {
			d.catLists = append(d.catLists, s.cats[:n])
		}
		d.catLists = append(d.catLists, s.cats[:1], s.cats[1:2])
		for _, l := range d.catLists {
			d.catJSON = append(d.catJSON, catArray(l))
		}
		w.datasets[s.system+"/"+s.name] = d
	}

	// Partners.
	pf := &PartnerFile{}
	for _, p := range partnerSpecs {
		pf.Partners = append(pf.Partners, p)
		w.partners[p.ID] = &partnerRT{Partner: p}
	}
	w.pfile = pf

	// Roles.
	roles := make([]*roleRT, len(roleSpecs))
	roleWeights := make([]float64, len(roleSpecs))
	for i, rs := range roleSpecs {
		roles[i] = w.resolveRole(rs.name, rs.dept, rs.acts)
		roleWeights[i] = rs.weight
	}
	rolePick := newPicker(roleWeights)
	locWeights := make([]float64, len(locationSpecs))
	for i, l := range locationSpecs {
		locWeights[i] = l.weight
	}
	locPick := newPicker(locWeights)

	// Employees.
	seen := map[string]int{}
	groups := map[[4]int]*shiftGroup{}
	for i := range c.Employees {
		ri := rolePick.pick(rng)
		if i < len(roles) {
			ri = i // every role is staffed
		}
		li := locPick.pick(rng)
		// Make sure the incident scenarios find their people.
		switch roleSpecs[ri].name {
		case "analyst":
			if i < len(roles) {
				li = 0 // Berlin
			}
		case "support_agent":
			if i < len(roles) {
				li = 1 // London
			}
		}
		loc := &locationSpecs[li]
		name := firstNames[rng.IntN(len(firstNames))] + "." + lastNames[rng.IntN(len(lastNames))]
		seen[name]++
		if n := seen[name]; n > 1 {
			name += strconv.Itoa(n)
		}
		rs := &roleSpecs[ri]
		a := &actor{
			id:     name,
			role:   roles[ri],
			loc:    loc,
			ip:     loc.ipPrefix + strconv.Itoa(rng.IntN(60)+1) + "." + strconv.Itoa(rng.IntN(250)+2),
			ua:     userAgents[rng.IntN(6)],
			weight: 0.3 + rng.ExpFloat64(),
			hour:   -1,
		}
		if rs.name == "analyst" || rs.name == "data_scientist" {
			if rng.IntN(3) == 0 {
				a.ua = userAgents[6+rng.IntN(2)]
			}
		}
		if rng.IntN(5) == 0 { // working remotely over the VPN
			a.ip = "100.64." + strconv.Itoa(rng.IntN(250)+1) + "." + strconv.Itoa(rng.IntN(250)+2)
		}
		a.key = []byte(a.id)
		a.actorJSON = []byte(`"actor":{"id":"` + a.id + `","kind":"user","role":"` + rs.name + `","department":"` + rs.dept + `"}`)
		w.employees = append(w.employees, a)

		var gk [4]int
		gk[0] = li
		gk[1] = int(rs.shift)
		switch rs.shift {
		case shiftSupport:
			gk[2] = 6 + 8*rng.IntN(2)
			gk[3] = rng.IntN(7)
		default:
			gk[2] = 8 + rng.IntN(2)
		}
		g := groups[gk]
		if g == nil {
			g = &shiftGroup{loc: loc, shift: rs.shift, start: gk[2], daysOff: gk[3]}
			groups[gk] = g
			w.groups = append(w.groups, g)
		}
		g.members = append(g.members, a)
		a.group = g
	}
	for _, g := range w.groups {
		ws := make([]float64, len(g.members))
		for i, m := range g.members {
			ws[i] = m.weight
			g.total += m.weight
		}
		g.pick = newPicker(ws)
	}

	// Services: the named core, then a long tail on the other systems.
	for _, s := range serviceSpecs {
		w.services = append(w.services, w.newService(s.id, s.role, s.dept, s.share, s.acts, rng))
	}
	tail := tailSystems()
	rest := c.Services - len(serviceSpecs)
	suffixes := []string{"", "-worker", "-api", "-sync", "-cron"}
	for i := range rest {
		sys := tail[i%len(tail)]
		suffix := suffixes[(i/len(tail))%len(suffixes)]
		id := "svc-" + sys.system + suffix
		if i >= len(tail)*len(suffixes) {
			id += "-" + strconv.Itoa(i)
		}
		share := 0.02 / float64(i+2) // Zipf-like tail
		acts := []actSpec{
			{70, actAccess, sys.system + "/" + sys.name, "read", 1, 1, "essential.service", "contract", "", ""},
			{25, actAccess, sys.system + "/" + sys.name, "update", 1, 1, "essential.service", "contract", "", ""},
			{5, actAccess, sys.system + "/" + sys.name, "query", 10, 500, "essential.service.operations", "legitimate_interests", "", ""},
		}
		w.services = append(w.services, w.newService(id, "microservice", "engineering", share, acts, rng))
	}
	return w
}

// tailSystems are the datasets that no core service works on, one per
// system.
func tailSystems() []datasetSpec {
	core := map[string]bool{}
	for _, s := range serviceSpecs {
		for _, a := range s.acts {
			core[strings.SplitN(a.ds, "/", 2)[0]] = true
		}
	}
	var out []datasetSpec
	done := map[string]bool{}
	for _, d := range datasetSpecs {
		if core[d.system] || done[d.system] || d.system == "hr" || d.system == "audit-log" {
			continue
		}
		done[d.system] = true
		out = append(out, d)
	}
	return out
}

func (w *world) newService(id, role, dept string, share float64, acts []actSpec, rng *rand.Rand) *actor {
	a := &actor{
		id:      id,
		service: true,
		role:    w.resolveRole(role, dept, acts),
		ip:      "10.244." + strconv.Itoa(rng.IntN(64)) + "." + strconv.Itoa(rng.IntN(250)+2),
		ua:      id + "/" + strconv.Itoa(1+rng.IntN(6)) + "." + strconv.Itoa(rng.IntN(30)) + "." + strconv.Itoa(rng.IntN(10)) + " (go1.26; linux/amd64)",
		weight:  share,
		hour:    -1,
	}
	a.key = []byte(a.id)
	a.actorJSON = []byte(`"actor":{"id":"` + id + `","kind":"service","role":"` + role + `","department":"` + dept + `"}`)
	cluster := "prod-eu-1"
	if rng.IntN(3) == 0 {
		cluster = "prod-eu-2"
	}
	a.attrJSON = []byte(`"attributes":{"cluster":"` + cluster + `","version":"` +
		strconv.Itoa(1+rng.IntN(6)) + "." + strconv.Itoa(rng.IntN(30)) + `"}`)
	return a
}

// resolveRole resolves a role's activities against datasets and partners.
func (w *world) resolveRole(name, dept string, specs []actSpec) *roleRT {
	r := &roleRT{name: name, dept: dept}
	ws := make([]float64, len(specs))
	for i, s := range specs {
		a := &activity{actSpec: s, ds: w.datasets[s.ds]}
		if a.ds == nil {
			panic("synth: unknown dataset " + s.ds)
		}
		if s.kind == actPartnerShare {
			a.partner = w.partners[s.partner]
			if a.partner == nil {
				panic("synth: unknown partner " + s.partner)
			}
			for j := range a.partner.Agreements {
				ag := &a.partner.Agreements[j]
				if o := newShareOpt(a.partner, ag, a.ds); o != nil {
					a.shares = append(a.shares, o)
				}
			}
			if len(a.shares) == 0 {
				panic("synth: no agreement of " + s.partner + " covers " + s.ds)
			}
		}
		r.acts = append(r.acts, a)
		ws[i] = s.weight
	}
	r.pick = newPicker(ws)
	return r
}

// newShareOpt returns how ds can be shared under ag: the dataset's
// categories the agreement covers, its channels and the domain used on
// each; nil when the agreement covers none of them.
func newShareOpt(p *partnerRT, ag *Agreement, ds *dataset) *shareOpt {
	var cats []string
	for _, c := range ds.cats {
		if coversAny(ag.Categories, c) {
			cats = append(cats, c)
		}
	}
	if len(cats) == 0 {
		return nil
	}
	o := &shareOpt{ag: ag, p: p, cats: cats, catJSON: catArray(cats), channels: ag.Channels, purpose: ag.Uses[0]}
	for _, c := range ag.Countries {
		if !slices.Contains(reservedCountries[ag.Ref], c) {
			o.countries = append(o.countries, c)
		}
	}
	for _, ch := range ag.Channels {
		o.domains = append(o.domains, channelDomain(&p.Partner, ch))
	}
	o.legal = legalBasisFor(p.Kind)
	return o
}

// channelDomain is the host a partner receives data on over a channel:
// sftp.<domain>, api.<domain>, mail.<domain>, or the domain itself.
func channelDomain(p *Partner, ch string) string {
	d := p.Domains[0]
	switch ch {
	case "sftp", "ftp":
		return ch + "." + d
	case "api":
		return "api." + d
	case "email":
		return "mail." + d
	}
	return d
}

// legalBasisFor is the legal basis the company claims for shares to a kind
// of partner.
func legalBasisFor(kind string) string {
	switch kind {
	case "processor":
		return "contract"
	case "authority":
		return "legal_obligation"
	case "affiliate":
		return "legitimate_interests"
	}
	return "consent"
}

// coversAny reports whether one of the dotted names in list equals name or
// is an ancestor of it.
func coversAny(list []string, name string) bool {
	for _, l := range list {
		if name == l || strings.HasPrefix(name, l+".") {
			return true
		}
	}
	return false
}

func catArray(cats []string) []byte {
	b := []byte{'['}
	for i, c := range cats {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, c...)
		b = append(b, '"')
	}
	return append(b, ']')
}

// partnerFile returns the registry.
func (w *world) partnerFile() *PartnerFile { return w.pfile }

// dataset returns a dataset by system and name; it panics on a catalogue
// error.
func (w *world) dataset(system, name string) *dataset {
	d := w.datasets[system+"/"+name]
	if d == nil {
		panic("synth: unknown dataset " + system + "/" + name)
	}
	return d
}

// pickEmployee picks an employee with the role, preferring the location
// (empty: any); it falls back to any employee with the role, then to any
// employee. Employees already cast in an incident are passed over while
// others qualify, so that incidents do not share actors.
func (w *world) pickEmployee(rng *rand.Rand, role, loc string) *actor {
	a := w.pickEmployeeFrom(rng, role, loc, true)
	if a == nil {
		a = w.pickEmployeeFrom(rng, role, loc, false)
	}
	w.used[a] = true
	return a
}

func (w *world) pickEmployeeFrom(rng *rand.Rand, role, loc string, fresh bool) *actor {
	var exact, withRole []*actor
	for _, e := range w.employees {
		if e.role.name != role || (fresh && w.used[e]) {
			continue
		}
		withRole = append(withRole, e)
		if loc == "" || e.loc.name == loc {
			exact = append(exact, e)
		}
	}
	switch {
	case len(exact) > 0:
		return exact[rng.IntN(len(exact))]
	case len(withRole) > 0:
		return withRole[rng.IntN(len(withRole))]
	case fresh:
		return nil
	}
	return w.employees[rng.IntN(len(w.employees))]
}

// service returns the service account with the id.
func (w *world) service(id string) *actor {
	for _, s := range w.services {
		if s.id == id {
			return s
		}
	}
	panic("synth: unknown service " + id)
}

// weight returns how active the group is in the UTC hour of the week
// (0 = Monday 00:00 UTC): 1 on shift, 0.5 at lunch, a trickle off shift.
func (g *shiftGroup) weight(slot int) float64 {
	local := (slot + g.loc.offset + 168) % 168
	day, hour := local/24, local%24
	switch g.shift {
	case shiftSupport:
		if day == g.daysOff || day == (g.daysOff+1)%7 {
			return 0.01
		}
		if hour >= g.start && hour < g.start+8 {
			return 1
		}
		return 0.01
	default:
		if day >= 5 {
			if g.shift == shiftOnCall && hour >= 10 && hour < 18 {
				return 0.05
			}
			return 0.005
		}
		switch {
		case hour == g.start+4:
			return 0.5
		case hour >= g.start && hour < g.start+9:
			return 1
		case g.shift == shiftOnCall && hour >= 19 && hour < 23:
			return 0.08
		case hour >= g.start-2 && hour < g.start+12:
			return 0.06
		}
		return 0.01
	}
}

// slotOf returns the UTC hour of the week (0 = Monday 00:00) of t, in
// nanoseconds since the epoch.
func slotOf(t int64) int {
	h := t / int64(time.Hour)
	// 1970-01-01 was a Thursday: day 3 counting from Monday.
	return int((h + 3*24) % 168)
}

// sessionID is a per-actor, per-day session id.
func sessionID(seed uint64, a *actor, t int64) uint64 {
	day := uint64(t / int64(24*time.Hour))
	h := splitmix(seed ^ splitmix(day) ^ fnv(a.id))
	if h == 0 {
		h = 1
	}
	return h
}

func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// eventID returns the 128-bit id of the n-th normal event.
func eventID(seed uint64, n uint64) (hi, lo uint64) {
	return splitmix(seed ^ splitmix(n<<1)), splitmix(^seed ^ splitmix(n<<1|1))
}

// specialID returns the 128-bit id of the n-th scheduled (batch or
// incident) event; a separate sequence from normal events.
func specialID(seed uint64, n int) (hi, lo uint64) {
	return eventID(seed^0xa5a5_5a5a_0f0f_f0f0, uint64(n)+1<<40)
}

// picker draws indices with given weights in O(1) (Walker's alias
// method).
type picker struct {
	prob  []float64
	alias []int32
}

func newPicker(w []float64) picker {
	n := len(w)
	p := picker{prob: make([]float64, n), alias: make([]int32, n)}
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := make([]float64, n)
	var small, large []int
	for i, x := range w {
		scaled[i] = x * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		p.prob[s] = scaled[s]
		p.alias[s] = int32(l)
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range large {
		p.prob[i] = 1
	}
	for _, i := range small {
		p.prob[i] = 1
	}
	return p
}

func (p *picker) pick(rng *rand.Rand) int {
	i := rng.IntN(len(p.prob))
	if rng.Float64() < p.prob[i] {
		return i
	}
	return int(p.alias[i])
}
