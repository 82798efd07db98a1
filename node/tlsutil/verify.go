package tlsutil

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"time"
)

// lookupTimeout bounds the DNS lookups of checkSAN.
const lookupTimeout = 5 * time.Second

// lookupIP is net.DefaultResolver's, replaced in tests.
var lookupIP = func(ctx context.Context, host string) ([]net.IP, error) {
	return net.DefaultResolver.LookupIP(ctx, "ip", host)
}

// checkSAN is etcd's check that a client certificate belongs to the
// address it connects from: a certificate without IP or DNS SANs passes;
// otherwise the remote IP must be one of its IP SANs or an address one of
// its DNS SANs resolves to. Connections that are not TCP (unix sockets)
// pass.
func checkSAN(cert *x509.Certificate, remote net.Addr) error {
	if len(cert.IPAddresses) == 0 && len(cert.DNSNames) == 0 {
		return nil
	}
	tcp, ok := remote.(*net.TCPAddr)
	if !ok {
		return nil
	}
	ip := tcp.IP
	if slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
		return nil
	}
	if len(cert.DNSNames) == 0 {
		return fmt.Errorf("certificate is valid for %v, not %s", cert.IPAddresses, ip)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	var lookupErrs []error
	for _, name := range cert.DNSNames {
		addrs, err := lookupIP(ctx, name)
		if err != nil {
			lookupErrs = append(lookupErrs, err)
			continue
		}
		if slices.ContainsFunc(addrs, ip.Equal) {
			return nil
		}
	}
	return fmt.Errorf("remote address %s matches none of the certificate's IP SANs %v or DNS SANs %q (lookup errors: %v)",
		ip, cert.IPAddresses, cert.DNSNames, lookupErrs)
}
