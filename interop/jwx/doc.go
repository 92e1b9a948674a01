// Package jwx holds interoperability tests between flowd's JOSE plumbing
// (blocks/jose, built on go-jose) and an independent implementation,
// github.com/lestrrat-go/jwx/v3. It is a module of its own so that jwx
// never becomes a dependency of flowd; run it with
//
//	cd interop/jwx && go test ./...
//
// jws_test.go covers signing keys, JWKS and tokens in both directions;
// JWE interop goes in a file of its own.
package jwx
