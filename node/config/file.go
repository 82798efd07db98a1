package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Config-file keys are the flag names, except for TLS, which etcd nests
// under client-transport-security and peer-transport-security. These maps
// give the flag each nested key sets.
var (
	clientTLSKeys = map[string]string{
		"cert-file":        "cert-file",
		"key-file":         "key-file",
		"client-cert-file": "client-cert-file",
		"client-key-file":  "client-key-file",
		"client-cert-auth": "client-cert-auth",
		"trusted-ca-file":  "trusted-ca-file",
		"auto-tls":         "auto-tls",
		"allowed-hostname": "client-cert-allowed-hostname",
		// etcd's file format has these for clients; no flag does.
		"allowed-cn":                   "",
		"skip-client-san-verification": "",
	}
	peerTLSKeys = map[string]string{
		"cert-file":                    "peer-cert-file",
		"key-file":                     "peer-key-file",
		"client-cert-file":             "peer-client-cert-file",
		"client-key-file":              "peer-client-key-file",
		"client-cert-auth":             "peer-client-cert-auth",
		"trusted-ca-file":              "peer-trusted-ca-file",
		"auto-tls":                     "peer-auto-tls",
		"allowed-cn":                   "peer-cert-allowed-cn",
		"allowed-hostname":             "peer-cert-allowed-hostname",
		"skip-client-san-verification": "peer-skip-client-san-verification",
	}
	// fileAliases are keys whose spelling in etcd 3.6 files differs from
	// the flag's.
	fileAliases = map[string]string{
		"experimental-snapshot-catch-up-entries": "experimental-snapshot-catchup-entries",
	}
	// notFileKeys are flags with no top-level key in etcd's file format.
	notFileKeys = map[string]bool{"config-file": true, "version": true}
)

func init() {
	for _, m := range []map[string]string{clientTLSKeys, peerTLSKeys} {
		for _, flagName := range m {
			if flagName != "" {
				notFileKeys[flagName] = true
			}
		}
	}
}

// fromFile loads a member's configuration from an etcd YAML config file.
func fromFile(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, usageErrorf("cannot read --config-file: %v", err)
	}
	c := Default()
	c.ConfigFile = path
	r := newRegistry(c)
	if err := r.applyYAML(data); err != nil {
		return nil, usageErrorf("config file %s: %v", path, err)
	}
	if err := r.finish(); err != nil {
		return nil, usageErrorf("config file %s: %v", path, err)
	}
	return c, nil
}

// applyYAML sets flags from the file's keys through the same flag.Values the
// command line uses. Keys are applied in sorted order so the outcome never
// depends on map iteration.
func (r *registry) applyYAML(data []byte) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("invalid YAML: %v", err)
	}
	var doc map[string]any
	if !bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.UseNumber() // keep 64-bit integers exact
		if err := dec.Decode(&doc); err != nil {
			return fmt.Errorf("the file must be a mapping of etcd configuration keys: %v", err)
		}
	}
	for _, key := range sortedKeys(doc) {
		val := doc[key]
		switch key {
		case "client-transport-security", "peer-transport-security":
			table := clientTLSKeys
			if key == "peer-transport-security" {
				table = peerTLSKeys
			}
			if err := r.applyTLSSection(key, val, table); err != nil {
				return err
			}
			continue
		}
		name := key
		if a, ok := fileAliases[key]; ok {
			name = a
		}
		if notFileKeys[name] || r.fs.Lookup(name) == nil {
			r.c.warn("config file key %q is not an etcd configuration key and is ignored", key)
			continue
		}
		if err := r.setFromFile(name, key, val); err != nil {
			return err
		}
	}
	return nil
}

func (r *registry) applyTLSSection(section string, val any, table map[string]string) error {
	if val == nil {
		return nil
	}
	m, ok := val.(map[string]any)
	if !ok {
		return fmt.Errorf("key %q must be a mapping", section)
	}
	for _, k := range sortedKeys(m) {
		name, known := table[k]
		switch {
		case !known:
			r.c.warn("config file key %q in %s is not an etcd configuration key and is ignored", k, section)
		case name == "" && section == "client-transport-security" && k == "allowed-cn":
			s, err := fileString(m[k], false)
			if err != nil {
				return fmt.Errorf("key %s.%s: %v", section, k, err)
			}
			r.c.ClientTLS.AllowedCNs = splitList(s)
		case name == "":
			b, err := fileString(m[k], false)
			if err != nil {
				return fmt.Errorf("key %s.%s: %v", section, k, err)
			}
			if err := (*boolFlag)(&r.c.ClientTLS.SkipClientSANVerify).Set(b); err != nil && b != "" {
				return fmt.Errorf("key %s.%s: %v", section, k, err)
			}
		default:
			if err := r.setFromFile(name, section+"."+k, m[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// setFromFile applies one value. Null and empty strings leave the default,
// as in etcd, where an empty key never overrides anything.
func (r *registry) setFromFile(name, key string, val any) error {
	f := r.fs.Lookup(name)
	_, isDuration := f.Value.(durationValue)
	s, err := fileString(val, isDuration)
	if err != nil {
		return fmt.Errorf("key %q: %v", key, err)
	}
	if s == "" {
		return nil
	}
	if err := f.Value.Set(s); err != nil {
		return fmt.Errorf("invalid value %q for key %q: %v", s, key, err)
	}
	r.c.ExplicitlySet[name] = true
	return nil
}

// fileString renders a YAML scalar or list the way the flag would be
// written. etcd's file format writes durations as integer nanoseconds;
// duration strings ("10m") are accepted too.
func fileString(val any, isDuration bool) (string, error) {
	switch v := val.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case json.Number:
		if isDuration {
			n, err := strconv.ParseInt(v.String(), 10, 64)
			if err != nil {
				return "", fmt.Errorf("a duration must be integer nanoseconds or a string such as \"10m\"")
			}
			return time.Duration(n).String(), nil
		}
		return v.String(), nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, item := range v {
			s, err := fileString(item, isDuration)
			if err != nil {
				return "", err
			}
			if _, nested := item.([]any); nested {
				return "", fmt.Errorf("nested lists are not allowed")
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("expected a value or a list, got a mapping")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
