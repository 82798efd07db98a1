package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/ballastdb/ballast/node/config"
	"github.com/ballastdb/ballast/node/tlsutil"
)

// tlsConfig maps one side's flags to a tlsutil.Config.
func tlsConfig(cfg *config.Config, info config.TLSInfo) tlsutil.Config {
	return tlsutil.Config{
		Info:                   info,
		CipherSuites:           cfg.CipherSuites,
		MinVersion:             cfg.TLSMinVersion,
		MaxVersion:             cfg.TLSMaxVersion,
		SelfSignedCertValidity: cfg.SelfSignedCertValidity,
	}
}

// setupTLS loads (or, with auto TLS, generates) the client and peer
// certificates and builds the client for member-to-member calls.
func (s *Server) setupTLS() error {
	o := &s.opts
	fixtures := filepath.Join(o.DataDir, "fixtures")
	for _, side := range []struct {
		name string
		c    tlsutil.Config
		urls []*url.URL
		out  **tlsutil.Set
	}{
		{"client", o.ClientTLS, append(append([]*url.URL{}, o.ListenClientURLs...), o.ListenMetricsURLs...), &s.clientTLS},
		{"peer", o.PeerTLS, o.ListenPeerURLs, &s.peerTLS},
	} {
		c := side.c
		c.Name = side.name
		c.Logger = s.lg
		if c.AutoDir == "" {
			c.AutoDir = filepath.Join(fixtures, side.name)
		}
		if len(c.AutoHosts) == 0 {
			for _, u := range side.urls {
				if u.Scheme == "https" || u.Scheme == "http" {
					c.AutoHosts = append(c.AutoHosts, u.Host)
				}
			}
		}
		set, err := tlsutil.New(c)
		if err != nil {
			return err
		}
		*side.out = set
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}
	s.peerClient = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // peer traffic never goes through an environment proxy
			DialContext:         dialer.DialContext,
			TLSClientConfig:     s.peerClientTLS(),
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	return nil
}

// peerClientTLS is what this member presents and trusts when it dials
// https:// peer URLs; nil without peer TLS settings (system roots, no
// client certificate).
func (s *Server) peerClientTLS() *tls.Config {
	if s.peerTLS == nil {
		return nil
	}
	return s.peerTLS.ClientConfig()
}

// clientTLSConfig serves https:// and unixs:// client URLs; nil refuses
// them.
func (s *Server) clientTLSConfig() *tls.Config {
	if !s.clientTLS.CanServe() {
		return nil
	}
	return s.clientTLS.ServerConfig()
}

// peerServerTLS serves https:// peer URLs (HTTP/1.1 only, as the
// transport speaks); nil refuses them.
func (s *Server) peerServerTLS() *tls.Config {
	if !s.peerTLS.CanServe() {
		return nil
	}
	cfg := s.peerTLS.ServerConfig()
	inner := cfg.GetConfigForClient
	cfg.NextProtos = []string{"http/1.1"}
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := inner(hello)
		if err != nil {
			return nil, err
		}
		c.NextProtos = []string{"http/1.1"}
		return c, nil
	}
	return cfg
}
