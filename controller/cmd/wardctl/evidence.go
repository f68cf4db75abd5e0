package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func (a *app) evidenceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "evidence",
		Short: "Read, export, verify, archive and prune evidence logs"}
	cmd.AddCommand(a.evidenceListCommand(), a.evidenceShowCommand(),
		a.evidenceWitnessesCommand(), a.evidenceExportCommand(), a.evidenceVerifyCommand(),
		a.evidenceArchiveCommand(), a.evidencePruneCommand(), a.evidenceArchivesCommand())
	return cmd
}

// callEvidence dials the controller like call, with an EvidenceService client and no
// deadline when timeout is zero (exports of large logs).
func (a *app) callEvidence(timeout time.Duration,
	fn func(context.Context, wardv1.EvidenceServiceClient) error) error {
	if a.cert == "" || a.key == "" || a.ca == "" {
		return errors.New("no operator credentials: set --cert, --key and --ca " +
			"(or WARD_CERT, WARD_KEY and WARD_CA)")
	}
	pair, err := pki.LoadKeyPair(a.cert, a.key)
	if err != nil {
		return err
	}
	roots, err := pki.LoadPool(a.ca)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(a.controller)
	if err != nil {
		return fmt.Errorf("--controller %q: want host:port", a.controller)
	}
	cfg := pki.ClientConfig(roots, host, func() (*tls.Certificate, error) { return &pair, nil })
	conn, err := grpc.NewClient(a.controller, grpc.WithTransportCredentials(
		credentials.NewTLS(cfg)))
	if err != nil {
		return fmt.Errorf("connect %s: %w", a.controller, err)
	}
	defer conn.Close()

	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return fn(ctx, wardv1.NewEvidenceServiceClient(conn))
}

// parseTime accepts RFC 3339 or a date (YYYY-MM-DD, midnight UTC).
func parseTime(flag, s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return timestamppb.New(t), nil
		}
	}
	return nil, fmt.Errorf("--%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or a date "+
		"(2026-01-02)", flag, s)
}

func (a *app) evidenceListCommand() *cobra.Command {
	var (
		tenant, since string
		types         []string
		after         uint64
		limit         uint32
	)
	cmd := &cobra.Command{
		Use: "list --tenant T", Short: "List records of a tenant's evidence log",
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			ts, err := parseTime("since", since)
			if err != nil {
				return err
			}
			req := &wardv1.ListRecordsRequest{Tenant: tenant, Types: types, Since: ts,
				AfterSeq: after, Limit: limit}
			return a.callEvidence(a.timeout, func(ctx context.Context,
				c wardv1.EvidenceServiceClient) error {
				resp, err := c.ListRecords(ctx, req)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSONList(a, resp.Records)
				}
				rows := make([][]string, 0, len(resp.Records))
				for _, r := range resp.Records {
					rows = append(rows, []string{strconv.FormatUint(r.Seq, 10), when(r.Time),
						r.Type, r.ActorKind + ":" + r.ActorId, orDash(r.Subject)})
				}
				return a.table([]string{"SEQ", "TIME", "TYPE", "ACTOR", "SUBJECT"}, rows)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant whose log to read (required)")
	f.StringSliceVar(&types, "type", nil, "only these record types (repeat or comma-separate)")
	f.StringVar(&since, "since", "", "only records at or after this time")
	f.Uint64Var(&after, "after", 0, "only records with a sequence number above this")
	f.Uint32Var(&limit, "limit", 0, "at most this many records (default and maximum 1000)")
	cmd.MarkFlagRequired("tenant")
	return cmd
}

func (a *app) evidenceShowCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use: "show SEQ --tenant T", Short: "Show one record with its data and hash",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return fmt.Errorf("SEQ %q: want a record number from 1", args[0])
			}
			return a.callEvidence(a.timeout, func(ctx context.Context,
				c wardv1.EvidenceServiceClient) error {
				resp, err := c.GetRecord(ctx, &wardv1.GetRecordRequest{Tenant: tenant, Seq: seq})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(resp.Record)
				}
				r := resp.Record
				_, err = fmt.Fprintf(a.stdout, "seq:      %d\ntime:     %s\ntype:     %s\n"+
					"actor:    %s:%s\nsubject:  %s\nhash:     %s\ndata:\n", r.Seq, when(r.Time),
					r.Type, r.ActorKind, r.ActorId, orDash(r.Subject), r.Hash)
				if err != nil {
					return err
				}
				return a.writeIndented([]byte(r.DataJson))
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant whose log to read (required)")
	cmd.MarkFlagRequired("tenant")
	return cmd
}

func (a *app) evidenceWitnessesCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use: "witnesses --tenant T", Short: "List checkpoints with their witness signatures",
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callEvidence(a.timeout, func(ctx context.Context,
				c wardv1.EvidenceServiceClient) error {
				resp, err := c.ListWitnesses(ctx, &wardv1.ListWitnessesRequest{Tenant: tenant})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(resp)
				}
				rows := make([][]string, 0, len(resp.Checkpoints))
				for _, cp := range resp.Checkpoints {
					rows = append(rows, []string{strconv.FormatUint(cp.Size, 10), when(cp.Time),
						cp.Head[:16] + "…", orDash(strings.Join(cp.Witnesses, ","))})
				}
				return a.table([]string{"SIZE", "SIGNED", "HEAD", "WITNESSES"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.MarkFlagRequired("tenant")
	return cmd
}

func (a *app) evidenceExportCommand() *cobra.Command {
	var tenant, from, to, out string
	cmd := &cobra.Command{
		Use:   "export --tenant T -o FILE",
		Short: "Write a bundle an auditor can verify offline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &wardv1.ExportRequest{Tenant: tenant}
			var err error
			if req.From, err = parseTime("from", from); err != nil {
				return err
			}
			if req.To, err = parseTime("to", to); err != nil {
				return err
			}
			return a.export(req, out, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant whose log to export (required)")
	f.StringVar(&from, "from", "", "records at or after this time (RFC 3339 or a date)")
	f.StringVar(&to, "to", "", "records at or before this time")
	// -o names the bundle here, shadowing the global output format flag
	f.StringVarP(&out, "output", "o", "", "bundle file to write (required)")
	cmd.MarkFlagRequired("tenant")
	return cmd
}

// export streams the bundle into a temporary file beside out and renames it into place
// when complete; progress goes to progressOut.
func (a *app) export(req *wardv1.ExportRequest, out string, progressOut io.Writer) error {
	if out == "" {
		return errors.New("export: name the bundle file with -o FILE")
	}
	bf, err := newBundleFile(out, progressOut)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer bf.discard()

	var sum *wardv1.ExportSummary
	err = a.callEvidence(0, func(ctx context.Context, c wardv1.EvidenceServiceClient) error {
		stream, err := c.Export(ctx, req)
		if err != nil {
			return err
		}
		return receiveBundle("export", bf, stream.Recv, func(m *wardv1.ExportResponse) {
			if s := m.GetSummary(); s != nil {
				sum = s
			}
		})
	})
	if err != nil {
		return err
	}
	if sum == nil {
		return errors.New("export: the controller ended the stream without a summary")
	}
	if err := bf.commit(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err = fmt.Fprintf(a.stdout, "wrote %s (%d bytes): tenant %s, records %d to %d, "+
		"%d checkpoints, %d witness signatures\nevidence key fingerprint (SHA-256): %s\n",
		out, bf.written, req.Tenant, sum.FirstSeq, sum.LastSeq, sum.Checkpoints,
		sum.Witnesses, sum.KeyFingerprint)
	return err
}

// bundleMessage is a message of a stream that carries a bundle (Export's and Archive's):
// progress, the bundle in chunks, then a summary.
type bundleMessage interface {
	GetProgress() *wardv1.ExportProgress
	GetChunk() []byte
}

// receiveBundle reads recv's stream until it ends: it shows progress, writes the chunks to
// bf and hands every other message (the summary) to other. Write errors are named op's.
func receiveBundle[M bundleMessage](op string, bf *bundleFile, recv func() (M, error),
	other func(M)) error {
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if p := msg.GetProgress(); p != nil {
			bf.progress(p)
		} else if c := msg.GetChunk(); c != nil {
			if err := bf.write(c); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		} else {
			other(msg)
		}
	}
}

// bundleFile is a bundle being received: written to a temporary file (0600) beside its
// name, renamed into place by commit.
type bundleFile struct {
	tmp         *os.File
	out         string
	written     int64
	progressOut io.Writer
	committed   bool
}

func newBundleFile(out string, progressOut io.Writer) (*bundleFile, error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".bundle-*")
	if err != nil {
		return nil, err
	}
	return &bundleFile{tmp: tmp, out: out, progressOut: progressOut}, nil
}

// progress shows how far the controller is.
func (b *bundleFile) progress(p *wardv1.ExportProgress) {
	phase := "reading"
	if p.Phase != "" {
		phase = p.Phase
	}
	fmt.Fprintf(b.progressOut, "\r%s records: %d of %d", phase, p.Done, p.Total)
	if p.Done >= p.Total {
		fmt.Fprintln(b.progressOut)
	}
}

func (b *bundleFile) write(chunk []byte) error {
	n, err := b.tmp.Write(chunk)
	b.written += int64(n)
	return err
}

// commit syncs the file and renames it into place.
func (b *bundleFile) commit() error {
	if err := b.tmp.Sync(); err != nil {
		return err
	}
	if err := b.tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(b.tmp.Name(), b.out); err != nil {
		return err
	}
	b.committed = true
	return nil
}

// discard removes the temporary file unless it was committed.
func (b *bundleFile) discard() {
	if !b.committed {
		b.tmp.Close()
		os.Remove(b.tmp.Name())
	}
}

func (a *app) evidenceVerifyCommand() *cobra.Command {
	var fingerprint, after string
	cmd := &cobra.Command{
		Use:   "verify FILE [--ca CA.pem | --key-fingerprint SHA256] [--after ARCHIVE]",
		Short: "Verify a bundle or archive offline; exits non-zero naming the first failure",
		Long: "Verify checks every record's hash and the chain, the checkpoint signatures, " +
			"the witness signatures, the evidence key against the trust anchor and the " +
			"signed manifest. It needs no controller. The anchor is --ca (the Ward CA " +
			"bundle, given explicitly) or --key-fingerprint (SHA-256 of the evidence " +
			"public key's DER SubjectPublicKeyInfo, hex). Archives are bundles too. With " +
			"--after ARCHIVE, the earlier bundle (an archive, say) is verified as well and " +
			"FILE must continue it: same tenant, its first record right after the " +
			"archive's last and chaining to its last head.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := evidence.VerifyOptions{KeyFingerprint: fingerprint}
			if cmd.Flags().Changed("ca") {
				roots, err := pki.LoadPool(a.ca)
				if err != nil {
					return err
				}
				opts.Roots = roots
			}
			if opts.Roots == nil && fingerprint == "" {
				return errors.New("verify: give a trust anchor: --ca CA.pem or " +
					"--key-fingerprint SHA256")
			}
			var prev *evidence.Report
			if after != "" {
				rep, err := a.verify(after, opts)
				if err != nil {
					return err
				}
				prev = &rep
			}
			rep, err := a.verify(args[0], opts)
			if err != nil || prev == nil {
				return err
			}
			if err := rep.Continues(*prev); err != nil {
				return fmt.Errorf("verify %s after %s: FAILED: %w", args[0], after, err)
			}
			_, err = fmt.Fprintf(a.stdout, "continuity:   %s continues %s (record %d chains "+
				"to its last head %s)\n", args[0], after, rep.FirstSeq, prev.Head)
			return err
		},
	}
	cmd.Flags().StringVar(&fingerprint, "key-fingerprint", "",
		"SHA-256 of the evidence public key (hex)")
	cmd.Flags().StringVar(&after, "after", "",
		"an earlier bundle or archive FILE must continue (verified too)")
	return cmd
}

// verify verifies the bundle at path, reading its records as a stream, and prints what
// it checked.
func (a *app) verify(path string, opts evidence.VerifyOptions) (evidence.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return evidence.Report{}, err
	}
	defer f.Close()
	rep, err := evidence.VerifyReader(f, opts, nil)
	if err != nil {
		return rep, fmt.Errorf("verify %s: FAILED: %w", path, err)
	}
	return rep, a.printReport(path, rep, opts)
}

func (a *app) printReport(path string, rep evidence.Report, opts evidence.VerifyOptions) error {
	anchor := "the given CA"
	if opts.Roots == nil {
		anchor = "the given key fingerprint"
	}
	w := a.stdout
	fmt.Fprintf(w, "bundle %s: OK\n", path)
	fmt.Fprintf(w, "tenant:       %s\n", rep.Tenant)
	if rep.Records == 0 {
		fmt.Fprintf(w, "records:      none\n")
	} else {
		fmt.Fprintf(w, "records:      %d (seq %d to %d, %s to %s), hash chain intact\n",
			rep.Records, rep.FirstSeq, rep.LastSeq, rep.FirstTime.UTC().Format(time.RFC3339),
			rep.LastTime.UTC().Format(time.RFC3339))
	}
	if rep.FirstSeq > 1 {
		fmt.Fprintf(w, "starts after: record %d, head %s (an earlier bundle or archive "+
			"holds it; check with --after)\n", rep.FirstSeq-1, rep.Base)
	}
	fmt.Fprintf(w, "checkpoints:  %d signed by the evidence key, the last at %d\n",
		rep.Checkpoints, rep.LastCheckpoint)
	if rep.Unsigned > 0 {
		fmt.Fprintf(w, "unsigned:     %d records after the last checkpoint; they chain to it "+
			"but no signature covers them yet\n", rep.Unsigned)
	}
	ids := make([]string, 0, len(rep.Witnesses))
	for id, n := range rep.Witnesses {
		ids = append(ids, fmt.Sprintf("%s (%d)", id, n))
	}
	sort.Strings(ids)
	witnessAnchor := ""
	if len(ids) > 0 && !rep.WitnessAnchored {
		witnessAnchor = " (signatures checked; certificates not anchored without --ca)"
	}
	fmt.Fprintf(w, "witnesses:    %s%s\n", orDash(strings.Join(ids, ", ")), witnessAnchor)
	fmt.Fprintf(w, "evidence key: SHA-256 %s, anchored by %s\n", rep.KeyFingerprint, anchor)
	_, err := fmt.Fprintf(w, "manifest:     signature and every file's SHA-256 match "+
		"(manifest SHA-256 %s)\n", rep.ManifestSHA256)
	return err
}
