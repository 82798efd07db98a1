package version

import (
	"errors"
	"testing"

	"github.com/coreos/go-semver/semver"
)

func v(s string) *semver.Version {
	if s == "" {
		return nil
	}
	return semver.Must(semver.NewVersion(s))
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when refused
	}{
		{"3.5", "3.5.0"},
		{"3.5.0", "3.5.0"},
		{"3.5.17", "3.5.0"},
		{"3.6.0-alpha.1", "3.6.0"},
		{"3.6.1+build", "3.6.0"},
		{"v3.5", ""},
		{"3", ""},
		{"abc", ""},
		{"", ""},
		{"3.5.x", ""},
	}
	for _, tt := range tests {
		got, ok := ParseTarget(tt.in)
		switch {
		case tt.want == "" && ok:
			t.Errorf("ParseTarget(%q) = %v, want a refusal", tt.in, got)
		case tt.want != "" && (!ok || got.String() != tt.want):
			t.Errorf("ParseTarget(%q) = %v, %v; want %s", tt.in, got, ok, tt.want)
		}
	}
}

func TestAllowedDowngradeAndCluster(t *testing.T) {
	if got := AllowedDowngrade(v("3.6.0")).String(); got != "3.5.0" {
		t.Errorf("AllowedDowngrade(3.6.0) = %s", got)
	}
	if got := Cluster(v("3.6.0")); got != "3.6" {
		t.Errorf("Cluster(3.6.0) = %q", got)
	}
	if got := Cluster(nil); got != "" {
		t.Errorf("Cluster(nil) = %q", got)
	}
	if got := Server().String(); got != APIVersion {
		t.Errorf("Server() = %s, want %s", got, APIVersion)
	}
}

func TestMinServer(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"3.6.0"}, "3.6.0"},
		{[]string{"3.6.0", "3.5.9", "3.7.1"}, "3.5.9"},
		{[]string{"3.6.0", ""}, ""},     // a member that did not answer
		{[]string{"3.6.0", "junk"}, ""}, // or answered nonsense
		{nil, ""},                       // no members known
	}
	for _, tt := range tests {
		got := MinServer(tt.in)
		if (got == nil) != (tt.want == "") || (got != nil && got.String() != tt.want) {
			t.Errorf("MinServer(%v) = %v, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecideCluster(t *testing.T) {
	tests := []struct {
		name                       string
		cluster, minServer, target string
		want                       string // "" = leave unchanged
		wantErr                    error
	}{
		{"first decision", "", "3.6.0", "", "3.6.0", nil},
		{"first decision, a member unknown", "", "", "", "3.0.0", nil},
		{"a member unknown", "3.6.0", "", "", "", nil},
		{"all at the cluster version", "3.6.0", "3.6.0", "", "", nil},
		{"patch levels do not count", "3.6.0", "3.6.4", "", "", nil},
		{"every member upgraded", "3.5.0", "3.6.2", "", "3.6.0", nil},
		{"up from the minimum", "3.0.0", "3.6.0", "", "3.6.0", nil},
		{"never down without a downgrade", "3.6.0", "3.5.0", "", "", nil},
		{"never across a major version", "3.6.0", "4.0.0", "", "", nil},
		{"downgrade enabled", "3.6.0", "3.6.0", "3.5.0", "3.5.0", nil},
		{"downgrade reached", "3.5.0", "3.6.0", "3.5.0", "", nil},
		{"downgrade with a member unknown", "3.6.0", "", "3.5.0", "", nil},
		{"downgrade two minors", "3.6.0", "3.6.0", "3.4.0", "", ErrInvalidDowngradeTarget},
		{"downgrade while a member is newer", "3.6.0", "3.7.0", "3.5.0", "", ErrInvalidDowngradeTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecideCluster(v(tt.cluster), v(tt.minServer), v(tt.target))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if (got == nil) != (tt.want == "") || (got != nil && got.String() != tt.want) {
				t.Fatalf("DecideCluster = %v, want %q", got, tt.want)
			}
		})
	}
}

func TestDowngradeDone(t *testing.T) {
	tests := []struct {
		target   string
		versions []string
		want     bool
	}{
		{"3.5.0", []string{"3.5.2", "3.5.0"}, true},
		{"3.5.0", []string{"3.5.2", "3.6.0"}, false},
		{"3.5.0", []string{"3.5.2", ""}, false},
		{"3.5.0", []string{"junk"}, false},
	}
	for _, tt := range tests {
		if got := DowngradeDone(v(tt.target), tt.versions); got != tt.want {
			t.Errorf("DowngradeDone(%s, %v) = %v, want %v", tt.target, tt.versions, got, tt.want)
		}
	}
}
