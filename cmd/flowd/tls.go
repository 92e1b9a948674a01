package main

// TLS for `flowd serve`. The certificate pair is read from two PEM files
// and read again when they change, so a renewal (certbot, cert-manager)
// needs no restart. The CLI's calls to a server on the same data folder
// trust exactly that server's certificate file, which may be self-signed.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// defaultCertCheck is how often, at most, serve looks at the certificate
// files' modification times (a stat of two files, on a handshake).
const defaultCertCheck = 5 * time.Second

// certFiles serves a certificate pair read from PEM files, as
// tls.Config.GetCertificate.
type certFiles struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	seen   [2]fileStamp // the files as last read, whether the pair loaded or not
	next   time.Time    // no look at the files before this
	failed string       // the last error logged, so a bad pair is logged once
}

type fileStamp struct{ mod, size int64 }

// newCertFiles reads the pair once; its error names the file at fault and
// never quotes key material.
func newCertFiles(certFile, keyFile string, every time.Duration, log *slog.Logger) (*certFiles, error) {
	cf := &certFiles{certFile: certFile, keyFile: keyFile, every: every, log: log}
	// Stat before reading: a write that lands after the read changes the
	// stamps again, so the next look reads the files again.
	stamps, err := cf.stat()
	if err != nil {
		return nil, err
	}
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cf.cert, cf.seen, cf.next = cert, stamps, time.Now().Add(every)
	return cf, nil
}

func (cf *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if now := time.Now(); now.After(cf.next) {
		cf.next = now.Add(cf.every)
		cf.reload()
	}
	return cf.cert, nil
}

// reload reads the pair again if either file changed since the last read.
// A pair that does not load (a renewal written half, a key that does not
// match) is logged and the previous certificate stays; the pair is tried
// again when either file changes next.
func (cf *certFiles) reload() {
	stamps, err := cf.stat()
	if err == nil {
		if stamps == cf.seen {
			return
		}
		cf.seen = stamps
		var cert *tls.Certificate
		if cert, err = loadKeyPair(cf.certFile, cf.keyFile); err == nil {
			cf.cert, cf.failed = cert, ""
			var notAfter time.Time
			if cert.Leaf != nil {
				notAfter = cert.Leaf.NotAfter
			}
			cf.log.Info("TLS certificate reloaded", "cert", cf.certFile, "not_after", notAfter)
			return
		}
	}
	if msg := err.Error(); msg != cf.failed {
		cf.failed = msg
		cf.log.Error("TLS certificate reload failed; still serving the previous certificate", "err", err)
	}
}

func (cf *certFiles) stat() ([2]fileStamp, error) {
	var out [2]fileStamp
	for i, f := range [2]struct{ flag, name string }{{"--tls-cert", cf.certFile}, {"--tls-key", cf.keyFile}} {
		fi, err := os.Stat(f.name)
		if err != nil {
			return out, fileError(f.flag, f.name, err)
		}
		out[i] = fileStamp{fi.ModTime().UnixNano(), fi.Size()}
	}
	return out, nil
}

// loadKeyPair reads a PEM certificate chain and its private key. Each
// file is checked on its own first, so an error names the file at fault;
// no error quotes the files' contents.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fileError("--tls-cert", certFile, err)
	}
	if err := checkCertPEM(certPEM); err != nil {
		return nil, fmt.Errorf("--tls-cert %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fileError("--tls-key", keyFile, err)
	}
	if err := checkKeyPEM(keyPEM); err != nil {
		return nil, fmt.Errorf("--tls-key %s: %w", keyFile, err)
	}
	// Both parse, so what is left to fail is whether they fit together;
	// crypto/tls says so in fixed words.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-key %s does not fit the certificate in --tls-cert %s: %w", keyFile, certFile, err)
	}
	return &cert, nil
}

func fileError(flag, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // it names the file again
	}
	return fmt.Errorf("%s %s: %w", flag, name, err)
}

// checkCertPEM wants at least one CERTIFICATE block, the leaf first, and
// every one of them to parse.
func checkCertPEM(data []byte) error {
	n, other := 0, []string{}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			other = append(other, b.Type)
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate found%s", foundTypes(other))
	}
	return nil
}

// checkKeyPEM wants the first "... PRIVATE KEY" block to parse as crypto/tls
// would. The parsers' own errors are dropped: they describe key bytes.
func checkKeyPEM(data []byte) error {
	var other []string
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			other = append(other, b.Type)
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return errors.New("the private key is encrypted; flowd needs it unencrypted (keep the file mode 0600)")
		}
		if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return nil
		}
		return fmt.Errorf("the %q block is not a private key flowd can read (PKCS #8, PKCS #1 or SEC 1)", b.Type)
	}
	return fmt.Errorf("no PEM private key found%s", foundTypes(other))
}

func foundTypes(types []string) string {
	if len(types) == 0 {
		return ""
	}
	return fmt.Sprintf(" (found %s)", strings.Join(types, ", "))
}

// pinnedTLS is the CLI's TLS configuration for calling the server that
// holds the data folder: it trusts the leaf certificate of that server's
// certificate file and nothing else, not the system roots and not the
// file's intermediates (a public CA's intermediate would vouch for any
// name). The address dialled (127.0.0.1, [::]) is rarely a name in the
// certificate, so the check is made for a name the leaf carries: only a
// server holding the leaf's key gets through.
func pinnedTLS(certFile string) (*tls.Config, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fileError("the server's certificate", certFile, err)
	}
	var leaf *x509.Certificate
	for rest := data; leaf == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			if leaf, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, fmt.Errorf("the server's certificate %s: %w", certFile, err)
			}
		}
	}
	if leaf == nil {
		return nil, fmt.Errorf("the server's certificate %s: no PEM certificate found", certFile)
	}
	var name string
	switch {
	case len(leaf.DNSNames) > 0:
		name = leaf.DNSNames[0]
	case len(leaf.IPAddresses) > 0:
		name = leaf.IPAddresses[0].String()
	default:
		return nil, fmt.Errorf("the server's certificate %s names no host (no subject alternative name)", certFile)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: name}, nil
}
