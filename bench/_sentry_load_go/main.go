// Command sentry-load drives a sentry's dapr.proto.sentry.v1.CA/SignCertificate the way daprd
// sidecars do, for bench/bench_sentry.py: each simulated sidecar holds one TLS connection,
// verifies the server against the trust anchors and sentry's SPIFFE ID, and sends a
// SignCertificateRequest with a CSR of its own key (Ed25519 as daprd, or ECDSA P-256). Keys and
// CSRs are made before the clock starts, one per request, so the client spends its CPU on gRPC
// and TLS only while it measures. It prints one JSON object: the run's wall time, every call's
// latency, errors, and its own CPU seconds. Once its connections are open it prints "ready"
// and waits for a line on stdin, so the caller can read the server's CPU counters first.
package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/encoding/protowire"
)

const method = "/dapr.proto.sentry.v1.CA/SignCertificate"

// rawCodec sends and receives already-encoded protobuf bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

func request(id, namespace string, csr []byte) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, id)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendString(b, namespace)
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	b = protowire.AppendBytes(b, csr)
	return b
}

// workloadCertificate returns field 1 of a SignCertificateResponse.
func workloadCertificate(response []byte) ([]byte, error) {
	for len(response) > 0 {
		number, kind, n := protowire.ConsumeTag(response)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		response = response[n:]
		if number == 1 && kind == protowire.BytesType {
			value, m := protowire.ConsumeBytes(response)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			return value, nil
		}
		m := protowire.ConsumeFieldValue(number, kind, response)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		response = response[m:]
	}
	return nil, errors.New("no workload certificate in the response")
}

func newCSR(keyType string) ([]byte, error) {
	var key crypto.Signer
	var err error
	switch keyType {
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("unknown key type %q", keyType)
	}
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

func tlsConfig(anchors *x509.CertPool, sentryID string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verified below as go-spiffe does: chain to the anchors, then the exact SPIFFE ID.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, 0, len(raw))
			for _, der := range raw {
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return err
				}
				certs = append(certs, cert)
			}
			if len(certs) == 0 {
				return errors.New("no peer certificate")
			}
			intermediates := x509.NewCertPool()
			for _, cert := range certs[1:] {
				intermediates.AddCert(cert)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{
				Roots: anchors, Intermediates: intermediates,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err != nil {
				return err
			}
			if len(certs[0].URIs) != 1 || certs[0].URIs[0].String() != sentryID {
				return fmt.Errorf("unexpected peer identity %v", certs[0].URIs)
			}
			return nil
		},
	}
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}

type result struct {
	Seconds     float64   `json:"seconds"`
	LatenciesUs []float64 `json:"latencies_us"`
	Errors      int64     `json:"errors"`
	FirstError  string    `json:"first_error,omitempty"`
	ClientCPU   float64   `json:"client_cpu"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50001", "sentry's gRPC address")
	anchorsFile := flag.String("anchors", "", "trust anchors PEM file")
	sentryID := flag.String("sentry-id", "spiffe://localhost/ns/default/dapr-sentry", "")
	clients := flag.Int("clients", 16, "simulated sidecars, one connection each")
	requests := flag.Int("requests", 10000, "requests in the measured run")
	keyType := flag.String("key", "ed25519", "ed25519 or p256")
	flag.Parse()

	anchorsPEM, err := os.ReadFile(*anchorsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	anchors := x509.NewCertPool()
	if !anchors.AppendCertsFromPEM(anchorsPEM) {
		fmt.Fprintln(os.Stderr, "no certificates in the trust anchors")
		os.Exit(1)
	}
	// One request per measured call plus one per client to open its connection.
	bodies := make([][]byte, *requests+*clients)
	for i := range bodies {
		csr, err := newCSR(*keyType)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		bodies[i] = request(fmt.Sprintf("app-%d", i%100), "default", csr)
	}
	creds := credentials.NewTLS(tlsConfig(anchors, *sentryID))
	conns := make([]*grpc.ClientConn, *clients)
	for i := range conns {
		conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer conn.Close()
		conns[i] = conn
		var response []byte
		body := bodies[*requests+i]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = conn.Invoke(ctx, method, &body, &response)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "opening connection:", err)
			os.Exit(1)
		}
	}
	latencies := make([]float64, *requests)
	var next, errorCount atomic.Int64
	var firstError atomic.Value
	var wg sync.WaitGroup
	// Connections are open: let the caller take its readings, then start on its word.
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(1)
	}
	cpuBefore := cpuSeconds()
	start := time.Now()
	for _, conn := range conns {
		wg.Add(1)
		go func(conn *grpc.ClientConn) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *requests {
					return
				}
				var response []byte
				began := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := conn.Invoke(ctx, method, &bodies[i], &response)
				cancel()
				latencies[i] = float64(time.Since(began).Nanoseconds()) / 1e3
				if err == nil {
					_, err = workloadCertificate(response)
				}
				if err != nil {
					errorCount.Add(1)
					firstError.CompareAndSwap(nil, err.Error())
				}
			}
		}(conn)
	}
	wg.Wait()
	out := result{
		Seconds:     time.Since(start).Seconds(),
		LatenciesUs: latencies,
		Errors:      errorCount.Load(),
		ClientCPU:   cpuSeconds() - cpuBefore,
	}
	if first, ok := firstError.Load().(string); ok {
		out.FirstError = first
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
