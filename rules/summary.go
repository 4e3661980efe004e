package rules

import (
	"strconv"
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// describeActor names an actor for alert texts: "jdoe (analyst, finance)"
// or "service account svc-etl (data_platform)".
func describeActor(a *event.Actor) string {
	var b strings.Builder
	if a.Kind == event.ActorService {
		b.WriteString("service account ")
	}
	b.WriteString(a.ID)
	var parts []string
	if a.Role != "" {
		parts = append(parts, a.Role)
	}
	if a.Department != "" {
		parts = append(parts, a.Department)
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	return b.String()
}

// source names the system and dataset: "crm/customers".
func source(s *event.Source) string {
	if s.Dataset == "" {
		return s.System
	}
	return s.System + "/" + s.Dataset
}

// bulkSummary: "jdoe (analyst, finance) exported 60,412 records in 12
// events between 12:15 and 13:01 UTC (up to 46 min), at or above the
// 10,000-record threshold for 1h; latest from crm/customers by export."
func bulkSummary(ev *event.Event, al *Alert, window time.Duration) string {
	var b strings.Builder
	b.WriteString(describeActor(&ev.Actor))
	b.WriteString(" exported ")
	b.WriteString(thousands(al.Records))
	b.WriteString(" records in ")
	b.WriteString(thousands(al.Events))
	if al.Events == 1 {
		b.WriteString(" event")
	} else {
		b.WriteString(" events")
	}
	if al.Events == 1 {
		b.WriteString(" at ")
		b.WriteString(clock(al.LastSeen, al.LastSeen))
		b.WriteString(" UTC")
	} else {
		b.WriteString(" between ")
		b.WriteString(clock(al.FirstSeen, al.LastSeen))
		b.WriteString(" and ")
		b.WriteString(al.LastSeen.Format("15:04"))
		b.WriteString(" UTC (up to ")
		b.WriteString(minutes(al.LastSeen.Sub(al.FirstSeen)))
		b.WriteString(")")
	}
	b.WriteString(", at or above the ")
	b.WriteString(thousands(al.Threshold))
	b.WriteString("-record threshold for ")
	b.WriteString(shortDuration(window))
	b.WriteString("; latest ")
	b.WriteString(string(ev.Action))
	b.WriteString(" from ")
	b.WriteString(source(&ev.Source))
	if ev.Type == event.TypeShare && ev.Recipient.Domain != "" {
		b.WriteString(" to ")
		b.WriteString(ev.Recipient.Domain)
	}
	b.WriteString(".")
	return b.String()
}

// unknownSummary: "jdoe (analyst, finance) shared 1,200 records
// (user.contact.email, user.financial) with files.example.io, which no
// entry of the partner registry lists, by sftp (encrypted) to US."
func unknownSummary(ev *event.Event, key string) string {
	var b strings.Builder
	b.WriteString(describeActor(&ev.Actor))
	b.WriteString(" shared ")
	if ev.Data.HasRecords {
		b.WriteString(thousands(ev.Data.Records))
		b.WriteString(" records")
	} else {
		b.WriteString("data")
	}
	if len(ev.Data.Categories) > 0 {
		b.WriteString(" (" + strings.Join(ev.Data.Categories, ", ") + ")")
	}
	b.WriteString(" from ")
	b.WriteString(source(&ev.Source))
	switch {
	case ev.Recipient.Domain != "":
		b.WriteString(" with ")
		b.WriteString(ev.Recipient.Domain)
		if ev.Recipient.Name != "" {
			b.WriteString(" (" + ev.Recipient.Name + ")")
		}
		b.WriteString(", a domain no entry of the partner registry lists")
	case key != "":
		b.WriteString(" with recipient id " + strconv.Quote(key) + ", which no entry of the partner registry has")
	default:
		b.WriteString(" with a recipient that has neither domain nor id")
	}
	if ev.Channel.Kind != "" {
		b.WriteString(", by ")
		b.WriteString(string(ev.Channel.Kind))
		if ev.Channel.EncryptedSet {
			if ev.Channel.Encrypted {
				b.WriteString(" (encrypted)")
			} else {
				b.WriteString(" (not encrypted)")
			}
		}
	}
	if ev.Recipient.Country != "" {
		b.WriteString(", to ")
		b.WriteString(ev.Recipient.Country)
	}
	if ev.Purpose != "" {
		b.WriteString(", for ")
		b.WriteString(ev.Purpose)
	}
	b.WriteString(".")
	return b.String()
}

func expiredNote(x Exception) string {
	return "Note: the exception for this actor (" + strings.TrimSuffix(x.Reason, ".") + "; owner " + x.Owner +
		") expired on " + x.Expires.Format("2006-01-02") + "."
}

// clock formats from as HH:MM, with its date when it is on another day than
// to.
func clock(from, to time.Time) string {
	if from.YearDay() != to.YearDay() || from.Year() != to.Year() {
		return from.Format("2006-01-02 15:04")
	}
	return from.Format("15:04")
}

func minutes(d time.Duration) string {
	m := int64((d + time.Minute - 1) / time.Minute)
	if m < 1 {
		m = 1
	}
	return strconv.FormatInt(m, 10) + " min"
}

// shortDuration prints 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	return s
}

// thousands formats n with comma separators: 60412 -> "60,412".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 && !(neg && b.Len() == 1) {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
