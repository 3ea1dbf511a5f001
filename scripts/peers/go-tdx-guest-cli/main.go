// Command go-tdx-guest-verify runs go-tdx-guest's verify.TdxQuote on one quote with a seven-file
// collateral directory at a given time, and prints one JSON line with the verdict and the time
// each run took. Test tooling for ratls-proxy's differential tests and bench; not a product.
//
// go-tdx-guest fetches collateral from Intel PCS URLs through an HTTPSGetter; here the getter
// answers those URLs from the directory (with the issuer-chain headers PCS sends), so nothing
// touches the network and every run verifies the same signed bytes as the other verifiers.
//
// The library logs to stdout; the result is the last line, a JSON object starting with {"tool".
//
// Usage: go-tdx-guest-verify --quote FILE --collateral DIR --root PEM --now RFC3339 [--runs N]
package main

import (
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/verify"
)

// dirGetter serves the PCS answers go-tdx-guest asks for from a collateral directory.
type dirGetter struct {
	tcbInfo, qeIdentity, pckCrl, rootCrl []byte
	tcbChain, qeChain, pckCrlChain       string
	requested                            []string
}

func (g *dirGetter) Get(u string) (map[string][]string, []byte, error) {
	g.requested = append(g.requested, u)
	switch {
	case strings.Contains(u, "/tdx/certification/v4/tcb?"):
		return map[string][]string{"Tcb-Info-Issuer-Chain": {g.tcbChain}}, g.tcbInfo, nil
	case strings.HasSuffix(u, "/qe/identity"):
		return map[string][]string{"Sgx-Enclave-Identity-Issuer-Chain": {g.qeChain}}, g.qeIdentity, nil
	case strings.Contains(u, "/pckcrl?"):
		return map[string][]string{"Sgx-Pck-Crl-Issuer-Chain": {g.pckCrlChain}}, g.pckCrl, nil
	case strings.HasSuffix(strings.ToLower(u), "rootca.der") || strings.Contains(strings.ToLower(u), "rootca"):
		return map[string][]string{}, g.rootCrl, nil
	}
	return nil, nil, fmt.Errorf("no local collateral for %s", u)
}

func loadDir(dir string) (*dirGetter, error) {
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	chain := func(name string) (string, error) {
		b, err := read(name)
		// PCS sends the chain URL-encoded in a header; the getter hands back what PCS would.
		return url.QueryEscape(strings.TrimSpace(string(b)) + "\n"), err
	}
	g := &dirGetter{}
	var err error
	if g.tcbInfo, err = read("tcb_info.json"); err != nil {
		return nil, err
	}
	if g.qeIdentity, err = read("qe_identity.json"); err != nil {
		return nil, err
	}
	if g.pckCrl, err = read("pck_crl.der"); err != nil {
		return nil, err
	}
	if g.rootCrl, err = read("root_ca_crl.der"); err != nil {
		return nil, err
	}
	if g.tcbChain, err = chain("tcb_info_issuer_chain.pem"); err != nil {
		return nil, err
	}
	if g.qeChain, err = chain("qe_identity_issuer_chain.pem"); err != nil {
		return nil, err
	}
	if g.pckCrlChain, err = chain("pck_crl_issuer_chain.pem"); err != nil {
		return nil, err
	}
	return g, nil
}

// go-tdx-guest only passes UpToDate; its refusals name the status they found.
var foundStatus = regexp.MustCompile(`TCB Status is not "UpToDate", found "(\w+)"`)

type result struct {
	Tool    string   `json:"tool"`
	Ok      bool     `json:"ok"`
	Status  *string  `json:"status"`
	Error   *string  `json:"error"`
	TimesNs []int64  `json:"timesNs"`
	URLs    []string `json:"requested"`
}

func main() {
	quotePath := flag.String("quote", "", "quote file")
	dir := flag.String("collateral", "", "seven-file collateral directory")
	nowText := flag.String("now", "", "verification time, RFC 3339")
	rootPath := flag.String("root", "", "trusted root certificate (PEM): Intel's SGX Root CA")
	runs := flag.Int("runs", 1, "how many times to verify (times are reported per run)")
	flag.Parse()
	fail := func(msg string) {
		fmt.Fprintf(os.Stderr, "go-tdx-guest-verify: %s\n", msg)
		os.Exit(2)
	}
	if *quotePath == "" || *dir == "" || *nowText == "" || *rootPath == "" {
		fail("--quote, --collateral, --root and --now are required")
	}
	rootPem, err := os.ReadFile(*rootPath)
	if err != nil {
		fail(err.Error())
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPem) {
		fail(fmt.Sprintf("%s: no PEM certificate", *rootPath))
	}
	now, err := time.Parse(time.RFC3339, *nowText)
	if err != nil {
		fail(fmt.Sprintf("--now: %v", err))
	}
	raw, err := os.ReadFile(*quotePath)
	if err != nil {
		fail(err.Error())
	}
	getter, err := loadDir(*dir)
	if err != nil {
		fail(err.Error())
	}
	if *runs < 1 {
		*runs = 1
	}
	res := result{Tool: "go-tdx-guest", TimesNs: make([]int64, 0, *runs)}
	for i := 0; i < *runs; i++ {
		getter.requested = nil
		opts := &verify.Options{GetCollateral: true, CheckRevocations: true, Getter: getter, Now: now, TrustedRoots: roots}
		t := time.Now()
		err = verify.RawTdxQuote(raw, opts)
		res.TimesNs = append(res.TimesNs, time.Since(t).Nanoseconds())
	}
	res.URLs = getter.requested
	if err == nil {
		res.Ok = true
		s := "UpToDate"
		res.Status = &s
	} else {
		msg := err.Error()
		res.Error = &msg
		if m := foundStatus.FindStringSubmatch(msg); m != nil {
			res.Status = &m[1]
		}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
