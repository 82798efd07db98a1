package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The flag.Value types below parse one flag each. Every Set replaces the
// previous value, so a flag given twice keeps the last one, as in etcd.

// durationValue is a Go duration ("5s", "2h"). It is a distinct type so the
// YAML loader can tell durations apart: etcd's file format writes them as
// integer nanoseconds.
type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return errors.New("expected a duration such as 500ms, 5s or 2h")
	}
	*v.p = d
	return nil
}

// millisValue is an unsigned number of milliseconds, the unit of etcd's
// --heartbeat-interval and --election-timeout.
type millisValue struct{ p *time.Duration }

func (v millisValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatInt(v.p.Milliseconds(), 10)
}

func (v millisValue) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return errors.New("expected a whole number of milliseconds")
	}
	*v.p = time.Duration(n) * time.Millisecond
	return nil
}

// uint32Value backs --max-concurrent-streams.
type uint32Value struct{ p *uint32 }

func (v uint32Value) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*v.p), 10)
}

func (v uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return errors.New("expected a number between 0 and 4294967295")
	}
	*v.p = uint32(n)
	return nil
}

// choiceValue accepts one of a fixed set of words.
type choiceValue struct {
	p       *string
	choices []string
}

func (v choiceValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v choiceValue) Set(s string) error {
	if !slices.Contains(v.choices, s) {
		return fmt.Errorf("valid values are %s", quoteList(v.choices))
	}
	*v.p = s
	return nil
}

// stringsValue is a comma-separated list. Blank items are dropped and
// duplicates kept once, in first-seen order.
type stringsValue struct{ p *[]string }

func (v stringsValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v stringsValue) Set(s string) error {
	*v.p = splitList(s)
	return nil
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item != "" && !slices.Contains(out, item) {
			out = append(out, item)
		}
	}
	return out
}

// urlsValue is a comma-separated list of URLs, checked as etcd checks them:
// scheme http, https, unix or unixs; http(s) need host:port and no path.
// Like etcd the list is sorted and de-duplicated, which makes "the first
// URL" deterministic whatever order the operator wrote them in. An empty
// value means no URLs.
type urlsValue struct{ p *[]url.URL }

func (v urlsValue) String() string {
	if v.p == nil {
		return ""
	}
	return joinURLs(*v.p)
}

func (v urlsValue) Set(s string) error {
	us, err := parseURLs(s)
	if err != nil {
		return err
	}
	*v.p = us
	return nil
}

func parseURLs(s string) ([]url.URL, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var us []url.URL
	for item := range strings.SplitSeq(s, ",") {
		u, err := parseURL(strings.TrimSpace(item))
		if err != nil {
			return nil, err
		}
		us = append(us, *u)
	}
	slices.SortFunc(us, func(a, b url.URL) int { return strings.Compare(a.String(), b.String()) })
	return slices.CompactFunc(us, func(a, b url.URL) bool { return a.String() == b.String() }), nil
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q", s)
	}
	if err := checkURL(u); err != nil {
		return nil, err
	}
	return u, nil
}

// checkURL holds the rules every member URL obeys.
func checkURL(u *url.URL) error {
	switch u.Scheme {
	case "http", "https":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || port == "" {
			return fmt.Errorf("URL %q must have the form scheme://host:port", u.String())
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("URL %q has an invalid port", u.String())
		}
		_ = host // may be empty for listen URLs (":2379"); advertise URLs are checked later
		if u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("URL %q must not have a path", u.String())
		}
		if u.User != nil {
			return fmt.Errorf("URL %q must not carry credentials", u.String())
		}
	case "unix", "unixs":
		// unix:/path/to/socket, unix://host:port or unix://name: the
		// listener uses the host, or the path when there is no host.
		if u.Host == "" && u.Path == "" && u.Opaque == "" {
			return fmt.Errorf("URL %q names no socket", u.String())
		}
	default:
		return fmt.Errorf("URL %q: scheme must be http, https, unix or unixs", u.String())
	}
	return nil
}

func joinURLs(us []url.URL) string {
	ss := make([]string, len(us))
	for i := range us {
		ss[i] = us[i].String()
	}
	return strings.Join(ss, ",")
}

func mustURLs(s string) []url.URL {
	us, err := parseURLs(s)
	if err != nil {
		panic(err)
	}
	return us
}

// featureGatesValue is "Name=true,Other=false". Names are checked against
// knownFeatures; set records which gates the flag itself named.
type featureGatesValue struct {
	p   *map[string]bool
	set map[string]bool
}

func (v featureGatesValue) String() string {
	if v.p == nil {
		return ""
	}
	return formatGates(*v.p)
}

func (v featureGatesValue) Set(s string) error {
	m := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return fmt.Errorf("missing bool value for %s", k)
		}
		b, err := strconv.ParseBool(strings.TrimSpace(val))
		if err != nil {
			return fmt.Errorf("invalid value of %s=%s", k, val)
		}
		if _, known := knownFeatures[k]; !known && k != "AllAlpha" && k != "AllBeta" {
			return fmt.Errorf("unrecognized feature gate: %s", k)
		}
		m[k] = b
	}
	*v.p = m
	clear(v.set)
	for k := range m {
		v.set[k] = true
	}
	return nil
}

func formatGates(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.FormatBool(m[k]))
	}
	return b.String()
}

// gateFlagValue backs a deprecated boolean --experimental-* flag that etcd
// 3.6 turned into a feature gate.
type gateFlagValue struct {
	gates map[string]bool
	gate  string
}

func (v gateFlagValue) IsBoolFlag() bool { return true }

func (v gateFlagValue) String() string {
	if v.gates == nil {
		return "false"
	}
	return strconv.FormatBool(v.gates[v.gate])
}

func (v gateFlagValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("expected true or false")
	}
	v.gates[v.gate] = b
	return nil
}

// inertValue accepts any value for a flag that has no effect in Ballast.
type inertValue struct{ bool bool }

func (v *inertValue) IsBoolFlag() bool { return v.bool }
func (v *inertValue) String() string   { return "" }
func (v *inertValue) Set(string) error { return nil }

// refuseValue accepts a flag only with a value that asks for nothing Ballast
// lacks (e.g. --enable-v2=false); anything else is refused with why.
type refuseValue struct {
	isBool bool
	ok     func(string) bool
	why    string
}

func (v *refuseValue) IsBoolFlag() bool { return v.isBool }
func (v *refuseValue) String() string   { return "" }

func (v *refuseValue) Set(s string) error {
	if v.ok(s) {
		return nil
	}
	return errors.New(v.why)
}

func isFalse(s string) bool { b, err := strconv.ParseBool(s); return err == nil && !b }
func isEmpty(s string) bool { return strings.TrimSpace(s) == "" }

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
