package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"

	"go.uber.org/zap"
)

// cached is a value parsed from files, parsed again when one of the files
// changes (size, mtime or inode). A change that does not parse (a rotation
// half done: new certificate, old key) keeps the previous value and is
// retried at the next get, with one warning per distinct file state.
type cached[T any] struct {
	what  string
	paths []string
	parse func(data [][]byte) (T, error)
	lg    *zap.Logger

	mu     sync.Mutex
	val    T
	loaded bool
	stamps []os.FileInfo // of the files val was parsed from
	failed []os.FileInfo // of the files that last failed to parse
}

func newCached[T any](what string, paths []string, parse func([][]byte) (T, error), lg *zap.Logger) *cached[T] {
	return &cached[T]{what: what, paths: paths, parse: parse, lg: lg}
}

func (c *cached[T]) get() (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamps := make([]os.FileInfo, len(c.paths))
	for i, p := range c.paths {
		fi, err := os.Stat(p)
		if err != nil {
			// An empty, non-nil state stands for "missing", so that a
			// file that stays missing is warned about once.
			return c.keep([]os.FileInfo{}, err)
		}
		stamps[i] = fi
	}
	if c.loaded && sameStamps(stamps, c.stamps) {
		return c.val, nil
	}
	if c.failed != nil && sameStamps(stamps, c.failed) {
		return c.keep(stamps, errors.New("unchanged since the last failure"))
	}
	// Stat before reading: a write racing with the read shows up as a
	// change at the next get, never as a missed one.
	data := make([][]byte, len(c.paths))
	for i, p := range c.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return c.keep(stamps, err)
		}
		data[i] = b
	}
	v, err := c.parse(data)
	if err != nil {
		return c.keep(stamps, err)
	}
	if c.loaded {
		c.lg.Info("reloaded TLS file(s) after a change on disk", zap.String("what", c.what), zap.Strings("files", c.paths))
	}
	c.val, c.loaded, c.stamps, c.failed = v, true, stamps, nil
	return v, nil
}

// keep answers a failed (re)load: the previous value if there is one.
func (c *cached[T]) keep(stamps []os.FileInfo, err error) (T, error) {
	err = fmt.Errorf("%s %v: %w", c.what, c.paths, err)
	if !c.loaded {
		return c.val, err
	}
	if c.failed == nil || !sameStamps(stamps, c.failed) {
		c.lg.Warn("cannot reload TLS file(s); still using the previous version", zap.Error(err))
	}
	c.failed = stamps
	return c.val, nil
}

func sameStamps(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()) || !os.SameFile(a[i], b[i]) {
			return false
		}
	}
	return true
}

func newKeyPair(certFile, keyFile string, lg *zap.Logger) *cached[*tls.Certificate] {
	return newCached("certificate/key", []string{certFile, keyFile}, func(d [][]byte) (*tls.Certificate, error) {
		c, err := tls.X509KeyPair(d[0], d[1])
		if err != nil {
			return nil, err
		}
		return &c, nil
	}, lg)
}

func newCertPool(caFile string, lg *zap.Logger) *cached[*x509.CertPool] {
	return newCached("trusted CA", []string{caFile}, func(d [][]byte) (*x509.CertPool, error) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(d[0]) {
			return nil, errors.New("no PEM certificate found")
		}
		return pool, nil
	}, lg)
}

// revoked is the set of serial numbers a CRL lists.
type revoked map[string]struct{}

func newCRL(crlFile string, lg *zap.Logger) *cached[revoked] {
	return newCached("CRL", []string{crlFile}, func(d [][]byte) (revoked, error) {
		der := d[0]
		if b, _ := pem.Decode(der); b != nil {
			der = b.Bytes
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, err
		}
		r := revoked{}
		for _, e := range rl.RevokedCertificateEntries {
			r[e.SerialNumber.String()] = struct{}{}
		}
		return r, nil
	}, lg)
}

// check refuses a chain with a revoked certificate in it. Like etcd it
// matches serial numbers only and does not check the CRL's signature: the
// file is as trusted as the CA file next to it.
func (r revoked) check(chain []*x509.Certificate) error {
	for _, c := range chain {
		if _, ok := r[c.SerialNumber.String()]; ok {
			return fmt.Errorf("certificate with serial %s (CN %q) is revoked", c.SerialNumber, c.Subject.CommonName)
		}
	}
	return nil
}
