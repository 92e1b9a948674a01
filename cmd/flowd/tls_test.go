package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// writeCert writes a fresh self-signed ECDSA P-256 certificate for
// 127.0.0.1 and its PKCS #8 key to certFile and keyFile.
func writeCert(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "flowd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// trusting returns a TLS client configuration whose only roots are certs.
func trusting(certs ...*x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &tls.Config{RootCAs: pool}
}

// servedCert is the leaf a fresh TLS handshake with addr presents.
func servedCert(t *testing.T, addr string, conf *tls.Config) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestServeTLS: flowd serve --tls-cert --tls-key serves HTTPS end to end:
// the issuer, the JWKS, the admin cookie, the CLI through the running
// server, and a renewed certificate without a restart.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "flowd-data")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCert(t, certFile, keyFile)
	c := &cli{getenv: envOf(map[string]string{"FLOWD_ADMIN_PASSWORD": "a long enough password"}), certCheck: 50 * time.Millisecond}
	s := serveWith(t, c, "--data", data, "--tls-cert", certFile, "--tls-key", keyFile)
	s.client.Transport = &http.Transport{TLSClientConfig: trusting(first)}
	if want := "https://" + s.addr; s.base != want || !strings.Contains(s.out.String(), "Admin UI: "+want+"/admin/") {
		t.Fatalf("serve output says %s, want %s:\n%s", s.base, want, s.out)
	}
	waitKeys(t, s) // the JWKS, over TLS with the test certificate as the only root

	// Discovery names the https issuer, and a standard client follows it.
	ctx := oidc.ClientContext(t.Context(), s.client)
	provider, err := oidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.Issuer != s.base || meta.TokenEndpoint != s.base+"/oauth/token" || meta.JWKSURI != s.base+"/.well-known/jwks.json" {
		t.Fatalf("metadata %+v %v", meta, err)
	}

	t.Run("plain http is refused", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + s.addr + "/.well-known/jwks.json")
		if err != nil {
			return // a refused connection is as good
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "keys") {
			t.Fatalf("plain http answered %d %s", resp.StatusCode, body)
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		conf := trusting(first)
		conf.MinVersion, conf.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		if conn, err := tls.Dial("tcp", s.addr, conf); err == nil {
			conn.Close()
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})
	t.Run("admin session cookie is Secure", func(t *testing.T) {
		resp, cookies := adminLogin(t, s)
		if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || !cookies[0].Secure || !cookies[0].HttpOnly {
			t.Fatalf("login: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	})

	// The CLI finds the server (https, and which certificate to trust)
	// from the data folder alone; a token from /oauth/token follows.
	vars := map[string]string{"FLOWD_DATA": data}
	if code, out, errs := flowdCmd(t, vars, "clients", "add", "--id", "svc", "--secret", "svc-secret-0123456789", "--scopes", "read"); code != 0 || !strings.Contains(out, `added client "svc"`) {
		t.Fatalf("clients add through the TLS server: %d %s %s", code, out, errs)
	}
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "svc-secret-0123456789", TokenURL: provider.Endpoint().TokenURL, Scopes: []string{"read"}}
	tok, err := cc.Token(context.WithValue(t.Context(), oauth2.HTTPClient, s.client))
	if err != nil {
		t.Fatalf("token over https: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "flowd-api"}).Verify(ctx, tok.AccessToken)
	if err != nil || idt.Issuer != s.base || idt.Subject != "svc" {
		t.Fatalf("access token %+v %v", idt, err)
	}

	// Renewal: a new pair in the same files is served without a restart,
	// and the CLI trusts the new one.
	second := writeCert(t, certFile, keyFile)
	both := trusting(first, second)
	deadline := time.Now().Add(10 * time.Second)
	for !servedCert(t, s.addr, both).Equal(second) {
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served:\n%s", s.errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(s.errs.String(), "TLS certificate reloaded") {
		t.Errorf("the reload is not logged:\n%s", s.errs)
	}
	if code, out, errs := flowdCmd(t, vars, "clients", "list"); code != 0 || !strings.Contains(out, "svc") {
		t.Fatalf("clients list after the renewal: %d %s %s", code, out, errs)
	}

	// A broken renewal is logged, naming the file, and the previous
	// certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "--tls-cert " + certFile + ": no PEM certificate found"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.errs.String(), want); {
		if !servedCert(t, s.addr, both).Equal(second) {
			t.Fatal("a broken renewal replaced the served certificate")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broken renewal is not logged as %q:\n%s", want, s.errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Count(s.errs.String(), want) != 1 {
		t.Errorf("the same broken pair is logged more than once:\n%s", s.errs)
	}
	keyPEM, _ := os.ReadFile(keyFile)
	assertNoKeyMaterial(t, s.errs.String()+s.out.String(), keyPEM)
}

// assertNoKeyMaterial fails if text quotes any line of a PEM key file.
func assertNoKeyMaterial(t *testing.T, text string, keyPEMs ...[]byte) {
	t.Helper()
	if strings.Contains(text, "-----BEGIN") {
		t.Errorf("output quotes PEM:\n%s", text)
	}
	for _, k := range keyPEMs {
		for _, line := range strings.Split(string(k), "\n") {
			if len(line) > 8 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line) {
				t.Errorf("output quotes key material %q", line)
			}
		}
	}
}

func TestServeTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile)
	otherCert, otherKey := filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	writeCert(t, otherCert, otherKey)
	// A corrupt key: PEM armour around bytes that are no key.
	corruptKey := filepath.Join(dir, "corrupt.key")
	junk := base64.StdEncoding.EncodeToString([]byte("these bytes are no key, whatever the armour says"))
	os.WriteFile(corruptKey, []byte("-----BEGIN PRIVATE KEY-----\n"+junk+"\n-----END PRIVATE KEY-----\n"), 0o600)
	encryptedKey := filepath.Join(dir, "encrypted.key")
	os.WriteFile(encryptedKey, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"+junk+"\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)
	missing := filepath.Join(dir, "missing.crt")
	keyPEM, _ := os.ReadFile(keyFile)
	otherKeyPEM, _ := os.ReadFile(otherKey)

	for _, tc := range []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stderr []string
	}{
		{"only --tls-cert", []string{"--tls-cert", certFile}, nil, 2, []string{"--tls-cert needs --tls-key"}},
		{"only FLOWD_TLS_KEY", nil, map[string]string{"FLOWD_TLS_KEY": keyFile}, 2, []string{"--tls-key needs --tls-cert (FLOWD_TLS_CERT)"}},
		{"only FLOWD_TLS_CERT", nil, map[string]string{"FLOWD_TLS_CERT": certFile}, 2, []string{"--tls-cert needs --tls-key (FLOWD_TLS_KEY)"}},
		{"missing certificate file", []string{"--tls-cert", missing, "--tls-key", keyFile}, nil, 1,
			[]string{"--tls-cert " + missing + ": no such file or directory"}},
		{"corrupt key", []string{"--tls-cert", certFile, "--tls-key", corruptKey}, nil, 1,
			[]string{"--tls-key " + corruptKey + `: the "PRIVATE KEY" block is not a private key flowd can read`}},
		{"encrypted key", []string{"--tls-cert", certFile, "--tls-key", encryptedKey}, nil, 1,
			[]string{"--tls-key " + encryptedKey + ": the private key is encrypted"}},
		{"files swapped", []string{"--tls-cert", keyFile, "--tls-key", certFile}, nil, 1,
			[]string{"--tls-cert " + keyFile + ": no PEM certificate found (found PRIVATE KEY)"}},
		{"key is a certificate", []string{"--tls-cert", certFile, "--tls-key", otherCert}, nil, 1,
			[]string{"--tls-key " + otherCert + ": no PEM private key found (found CERTIFICATE)"}},
		{"key of another certificate", []string{"--tls-cert", certFile, "--tls-key", otherKey}, map[string]string{}, 1,
			[]string{"--tls-key " + otherKey + " does not fit the certificate in --tls-cert " + certFile, "does not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "flowd-data")
			code, stdout, stderr := flowdCmd(t, tc.env, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s %s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			assertNoKeyMaterial(t, stdout+stderr, keyPEM, otherKeyPEM, []byte(junk))
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("a bad TLS configuration created the data folder (%v)", err)
			}
		})
	}
}

// TestPinnedTLS: the CLI's client for a TLS server trusts that server's
// certificate file whatever address it dials, and nothing else.
func TestPinnedTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{}`))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	served := filepath.Join(dir, "served.crt")
	os.WriteFile(served, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	other := filepath.Join(dir, "other.crt")
	writeCert(t, other, filepath.Join(dir, "other.key"))

	for _, tc := range []struct {
		name, certFile, wantErr string
	}{
		// httptest's certificate names example.com first; the call dials 127.0.0.1.
		{"the server's certificate", served, ""},
		{"another certificate", other, "does not present the certificate in " + other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := pinnedTLS(tc.certFile)
			if err != nil {
				t.Fatal(err)
			}
			rb := &remoteBackend{base: srv.URL, certFile: tc.certFile, client: &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}}
			_, err = rb.do(t.Context(), "GET", "/", nil, nil)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestAddrFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text, base, certFile string
	}{
		{"bare address (older flowd)", "127.0.0.1:8080\n", "http://127.0.0.1:8080", ""},
		{"http", "http://127.0.0.1:8080\n", "http://127.0.0.1:8080", ""},
		{"https", "https://[::]:8443\ntls-cert /etc/flowd/tls.crt\n", "https://[::]:8443", "/etc/flowd/tls.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, addrFile)
			os.WriteFile(path, []byte(tc.text), 0o600)
			base, certFile, err := readAddrFile(path)
			if err != nil || base != tc.base || certFile != tc.certFile {
				t.Fatalf("got %q %q %v, want %q %q", base, certFile, err, tc.base, tc.certFile)
			}
		})
	}
	c := &cli{data: dir, tlsCert: "tls.crt"}
	if err := c.writeAddrFile("https://127.0.0.1:8443"); err != nil {
		t.Fatal(err)
	}
	base, certFile, err := readAddrFile(filepath.Join(dir, addrFile))
	if abs, _ := filepath.Abs("tls.crt"); err != nil || base != "https://127.0.0.1:8443" || certFile != abs {
		t.Fatalf("round trip: %q %q %v", base, certFile, err)
	}
}

// Behind a TLS-terminating proxy (plain http here, an https issuer) the
// admin session cookie is Secure too; with an http issuer it is not.
func TestSecureCookieFromIssuer(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		secure bool
	}{{"https://id.example.test", true}, {"", false}} {
		c := &cli{getenv: envOf(map[string]string{"FLOWD_ADMIN_PASSWORD": "a long enough password"})}
		args := []string{"--data", filepath.Join(t.TempDir(), "data")}
		if tc.issuer != "" {
			args = append(args, "--issuer", tc.issuer)
		}
		s := serveWith(t, c, args...)
		resp, cookies := adminLogin(t, s)
		if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || cookies[0].Secure != tc.secure {
			t.Errorf("issuer %q: login %d, cookies %v, want Secure=%v", tc.issuer, resp.StatusCode, resp.Header.Values("Set-Cookie"), tc.secure)
		}
		s.shutdown(t)
	}
}

// adminLogin posts the admin password to s (with s's client transport,
// not following the redirect) and returns the answer and its cookies.
func adminLogin(t *testing.T, s *server) (*http.Response, []*http.Cookie) {
	t.Helper()
	nofollow := &http.Client{Transport: s.client.Transport, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nofollow.PostForm(s.base+"/admin/login", url.Values{"password": {"a long enough password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, resp.Cookies()
}
