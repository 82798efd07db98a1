// Package tlsutil builds the crypto/tls configurations of a member's client
// and peer listeners, and of its peer client, from the --cert-file,
// --peer-cert-file, ... flags, the way etcd does:
//
//   - the certificate, key, trusted CA and CRL files are read again when
//     they change on disk (checked at every handshake by size, mtime and
//     inode), so an operator rotates them without a restart; a file that
//     cannot be read or parsed mid-rotation leaves the previous version in
//     use and is retried on the next handshake;
//   - a server asks for and verifies client certificates when
//     --[peer-]client-cert-auth or --[peer-]trusted-ca-file is set (etcd
//     requires them in both cases);
//   - a client certificate whose serial is in --client-crl-file /
//     --peer-crl-file is refused;
//   - a certificate that carries IP or DNS SANs must match the address the
//     connection comes from, unless --peer-skip-client-san-verification
//     (etcd's checkSAN);
//   - --peer-cert-allowed-cn / --peer-cert-allowed-hostname restrict the
//     certificates accepted, on both sides of a peer connection;
//   - --auto-tls / --peer-auto-tls generate a self-signed certificate into
//     a directory (the member uses <data-dir>/fixtures/client|peer) and
//     reuse it on later starts; clients then skip verification, as etcd's;
//   - --cipher-suites, --tls-min-version and --tls-max-version apply to
//     every configuration built here.
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"

	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/config"
)

// Config is one side's (client or peer) TLS settings.
type Config struct {
	Info config.TLSInfo

	CipherSuites []string // IANA names; empty = Go's defaults
	MinVersion   string   // "TLS1.2", "TLS1.3" or "" (TLS 1.2)
	MaxVersion   string   // "", "TLS1.2" or "TLS1.3"

	// AutoDir is where Info.AutoTLS keeps its generated certificate;
	// AutoHosts are the host:port (or host) the certificate names.
	AutoDir                string
	AutoHosts              []string
	SelfSignedCertValidity uint // years; 0 means 1

	// Name tells the two sides apart in logs ("client" or "peer").
	Name   string
	Logger *zap.Logger
}

// Set is a side's TLS material, loaded once to fail fast on bad files and
// reloaded from disk as the files change. Its methods are safe for
// concurrent use.
type Set struct {
	name       string
	lg         *zap.Logger
	info       config.TLSInfo
	selfSigned bool
	minV, maxV uint16
	suites     []uint16

	cert       *cached[*tls.Certificate] // server certificate
	clientCert *cached[*tls.Certificate] // what this member presents as a client
	ca         *cached[*x509.CertPool]   // nil without a trusted CA file
	crl        *cached[revoked]          // nil without a CRL file
}

// New loads c's files (generating the auto-TLS certificate first when
// asked and none is configured). It returns nil, nil when c configures no
// TLS at all.
func New(c Config) (*Set, error) {
	lg := c.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if c.Name == "" {
		c.Name = "client"
	}
	lg = lg.With(zap.String("tls", c.Name))
	info := c.Info
	s := &Set{name: c.Name, lg: lg}
	if info.AutoTLS {
		if info.Empty() {
			if c.AutoDir == "" {
				return nil, fmt.Errorf("%s auto TLS: no directory to keep the generated certificate in", c.Name)
			}
			cf, kf, err := SelfCert(c.AutoDir, c.AutoHosts, c.SelfSignedCertValidity, lg)
			if err != nil {
				return nil, fmt.Errorf("%s auto TLS: %w", c.Name, err)
			}
			info.CertFile, info.KeyFile = cf, kf
			info.ClientCertFile, info.ClientKeyFile = "", ""
			s.selfSigned = true
		} else {
			lg.Warn("ignoring auto TLS since certificate files are given")
		}
	}
	if info.Empty() && info.TrustedCAFile == "" && info.ClientCertFile == "" {
		return nil, nil
	}
	s.info = info
	var err error
	if s.minV, s.maxV, s.suites, err = versions(c); err != nil {
		return nil, err
	}
	if info.CertFile != "" {
		s.cert = newKeyPair(info.CertFile, info.KeyFile, lg)
		if _, err := s.cert.get(); err != nil {
			return nil, fmt.Errorf("%s certificate: %w", c.Name, err)
		}
	}
	s.clientCert = s.cert
	if info.ClientCertFile != "" {
		s.clientCert = newKeyPair(info.ClientCertFile, info.ClientKeyFile, lg)
		if _, err := s.clientCert.get(); err != nil {
			return nil, fmt.Errorf("%s client certificate: %w", c.Name, err)
		}
	}
	if info.TrustedCAFile != "" {
		s.ca = newCertPool(info.TrustedCAFile, lg)
		if _, err := s.ca.get(); err != nil {
			return nil, fmt.Errorf("%s trusted CA: %w", c.Name, err)
		}
	}
	if info.CRLFile != "" {
		s.crl = newCRL(info.CRLFile, lg)
		if _, err := s.crl.get(); err != nil {
			return nil, fmt.Errorf("%s CRL: %w", c.Name, err)
		}
	}
	return s, nil
}

func versions(c Config) (minV, maxV uint16, suites []uint16, err error) {
	parse := func(flag, v string) (uint16, error) {
		ver, err := config.TLSVersion(v)
		if err != nil {
			return 0, fmt.Errorf("--%s: %w", flag, err)
		}
		return ver, nil
	}
	if minV, err = parse("tls-min-version", c.MinVersion); err != nil {
		return
	}
	if maxV, err = parse("tls-max-version", c.MaxVersion); err != nil {
		return
	}
	if minV == 0 {
		minV = tls.VersionTLS12
	}
	if maxV != 0 && maxV < minV {
		return 0, 0, nil, fmt.Errorf("--tls-min-version %s is above --tls-max-version %s", c.MinVersion, c.MaxVersion)
	}
	for _, name := range c.CipherSuites {
		id, ok := config.CipherSuite(name)
		if !ok {
			return 0, 0, nil, fmt.Errorf("--cipher-suites: unknown cipher suite %q", name)
		}
		suites = append(suites, id)
	}
	return minV, maxV, suites, nil
}

// SelfSigned tells whether the certificate was generated by auto TLS.
func (s *Set) SelfSigned() bool { return s.selfSigned }

// CanServe tells whether the set has a server certificate.
func (s *Set) CanServe() bool { return s != nil && s.cert != nil }

func (s *Set) base() *tls.Config {
	return &tls.Config{MinVersion: s.minV, MaxVersion: s.maxV, CipherSuites: s.suites}
}

// ServerConfig is the configuration of a listener. Each handshake gets the
// current certificate, CA pool and CRL from disk (when they changed).
// NextProtos is left empty for the caller to set.
func (s *Set) ServerConfig() *tls.Config {
	cfg := s.base()
	cfg.GetConfigForClient = s.configForClient
	return cfg
}

func (s *Set) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if s.cert == nil {
		return nil, errors.New("no server certificate configured")
	}
	cert, err := s.cert.get()
	if err != nil {
		return nil, err
	}
	cfg := s.base()
	cfg.Certificates = []tls.Certificate{*cert}
	if s.info.ClientCertAuth || s.ca != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if s.ca != nil {
			if cfg.ClientCAs, err = s.ca.get(); err != nil {
				return nil, err
			}
		}
	}
	var remote net.Addr
	if hello.Conn != nil {
		remote = hello.Conn.RemoteAddr()
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := s.verifyClient(cs, remote); err != nil {
			var cn string
			if len(cs.PeerCertificates) > 0 {
				cn = cs.PeerCertificates[0].Subject.CommonName
			}
			s.lg.Warn("rejected connection", zap.Stringer("remote-addr", addrStringer{remote}),
				zap.String("server-name", cs.ServerName), zap.String("common-name", cn), zap.Error(err))
			return err
		}
		return nil
	}
	return cfg, nil
}

type addrStringer struct{ a net.Addr }

func (a addrStringer) String() string {
	if a.a == nil {
		return ""
	}
	return a.a.String()
}

// verifyClient runs the checks crypto/tls does not: revocation, allowed
// names and the SAN/address match. Go has already verified the chain when
// client certificates are required.
func (s *Set) verifyClient(cs tls.ConnectionState, remote net.Addr) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	if s.crl != nil {
		rev, err := s.crl.get()
		if err != nil {
			return err
		}
		if err := rev.check(cs.PeerCertificates); err != nil {
			return err
		}
	}
	leaf := cs.PeerCertificates[0]
	if err := s.checkAllowed(leaf); err != nil {
		return err
	}
	if !s.info.SkipClientSANVerify {
		if err := checkSAN(leaf, remote); err != nil {
			return err
		}
	}
	return nil
}

// checkAllowed applies --peer-cert-allowed-cn and
// --peer-cert-allowed-hostname: with either set, the certificate must match
// one of the names in one of them.
func (s *Set) checkAllowed(leaf *x509.Certificate) error {
	cns, hosts := s.info.AllowedCNs, s.info.AllowedHostnames
	if len(cns) == 0 && len(hosts) == 0 {
		return nil
	}
	if slices.Contains(cns, leaf.Subject.CommonName) {
		return nil
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) == nil {
			return nil
		}
	}
	return fmt.Errorf("certificate (CN %q) is not allowed: CN not in %v and no SAN matches %v",
		leaf.Subject.CommonName, cns, hosts)
}

// ClientConfig is the configuration for dialing the other side (peers
// dialing peers). The client certificate is read again when it changes;
// the trusted CA pool is the one loaded at start. Without a trusted CA
// file the system roots verify the server, and with an auto-TLS
// certificate nothing does (etcd's behaviour).
func (s *Set) ClientConfig() *tls.Config {
	cfg := s.base()
	if s.clientCert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.clientCert.get()
		}
	}
	if s.ca != nil {
		pool, _ := s.ca.get() // loaded once in New: never fails now
		cfg.RootCAs = pool
	}
	if s.selfSigned {
		cfg.InsecureSkipVerify = true
	}
	if len(s.info.AllowedCNs) > 0 || len(s.info.AllowedHostnames) > 0 {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			if err := s.checkAllowed(cs.PeerCertificates[0]); err != nil {
				s.lg.Warn("rejected server certificate", zap.String("server-name", cs.ServerName), zap.Error(err))
				return err
			}
			return nil
		}
	}
	return cfg
}
