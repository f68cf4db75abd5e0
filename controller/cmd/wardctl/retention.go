package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func (a *app) evidenceArchiveCommand() *cobra.Command {
	var tenant, before, out string
	cmd := &cobra.Command{
		Use:   "archive --tenant T --before TIME -o FILE",
		Short: "Archive a tenant's records older than a time (admin); keeps a copy in FILE",
		Long: "Archive asks the controller to write the tenant's records recorded before " +
			"TIME, from the end of the previous archive up to the newest signed checkpoint " +
			"among them, to an archive bundle that it verifies, keeps in its archive " +
			"directory and records in the log (log.archived). The archive is streamed to " +
			"FILE too; verify it with 'wardctl evidence verify FILE'. Archiving deletes " +
			"nothing: see 'wardctl evidence prune'.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := parseTime("before", before)
			if err != nil {
				return err
			}
			if ts == nil {
				return errors.New("archive: give --before TIME")
			}
			return a.archive(&wardv1.ArchiveRequest{Tenant: tenant, Before: ts}, out,
				cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant whose log to archive (required)")
	f.StringVar(&before, "before", "", "archive records recorded before this time "+
		"(RFC 3339 or a date; required)")
	// -o names the archive here, shadowing the global output format flag
	f.StringVarP(&out, "output", "o", "", "archive file to write (required)")
	cmd.MarkFlagRequired("tenant")
	cmd.MarkFlagRequired("before")
	return cmd
}

// archive streams the archive into a temporary file beside out and renames it into place
// when complete; progress goes to progressOut.
func (a *app) archive(req *wardv1.ArchiveRequest, out string, progressOut io.Writer) error {
	if out == "" {
		return errors.New("archive: name the archive file with -o FILE")
	}
	bf, err := newBundleFile(out, progressOut)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer bf.discard()

	var sum *wardv1.ArchiveSummary
	err = a.callEvidence(0, func(ctx context.Context, c wardv1.EvidenceServiceClient) error {
		stream, err := c.Archive(ctx, req)
		if err != nil {
			return err
		}
		return receiveBundle("archive", bf, stream.Recv, func(m *wardv1.ArchiveResponse) {
			if s := m.GetSummary(); s != nil {
				sum = s
			}
		})
	})
	if err != nil {
		return err
	}
	if sum == nil || sum.Archive == nil {
		return errors.New("archive: the controller ended the stream without a summary")
	}
	if err := bf.commit(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	ar := sum.Archive
	_, err = fmt.Fprintf(a.stdout, "wrote %s (%d bytes): tenant %s, records %d to %d "+
		"(until %s), %d checkpoints, %d witness signatures\ncontroller keeps it as %s\n"+
		"manifest SHA-256: %s\nevidence key fingerprint (SHA-256): %s\n", out, bf.written,
		req.Tenant, ar.FirstSeq, ar.LastSeq, when(ar.LastTime), sum.Checkpoints,
		sum.Witnesses, ar.File, ar.ManifestSha256, sum.KeyFingerprint)
	return err
}

func (a *app) evidencePruneCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "prune --tenant T",
		Short: "Remove archived records past the retention period from the live log (admin)",
		Long: "Prune asks the controller to remove from the tenant's live log the records " +
			"that are both archived and older than its retention period (at least six " +
			"years). It verifies their archives again first and records log.pruned before " +
			"removing anything. Records not archived, or younger than the cutoff, stay.",
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			// no deadline: a prune verifies whole archives again before it removes anything
			return a.callEvidence(0, func(ctx context.Context,
				c wardv1.EvidenceServiceClient) error {
				resp, err := c.Prune(ctx, &wardv1.PruneRequest{Tenant: tenant})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(resp)
				}
				_, err = fmt.Fprintf(a.stdout, "pruned %d records of %s: the live log now "+
					"starts after record %d (head %s)\nretention %d years, cutoff %s; the "+
					"records are kept in %d archive(s)\n", resp.Removed, tenant,
					resp.PrunedThrough, resp.Head, resp.RetentionYears, when(resp.Cutoff),
					len(resp.Archives))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant whose log to prune (required)")
	cmd.MarkFlagRequired("tenant")
	return cmd
}

func (a *app) evidenceArchivesCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "archives --tenant T",
		Short: "List a tenant's archives and how far its live log was pruned",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callEvidence(a.timeout, func(ctx context.Context,
				c wardv1.EvidenceServiceClient) error {
				resp, err := c.ListArchives(ctx, &wardv1.ListArchivesRequest{Tenant: tenant})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(resp)
				}
				rows := make([][]string, 0, len(resp.Archives))
				for _, ar := range resp.Archives {
					state := "live"
					if ar.LastSeq <= resp.PrunedThrough {
						state = "pruned"
					}
					rows = append(rows, []string{strconv.FormatUint(ar.FirstSeq, 10),
						strconv.FormatUint(ar.LastSeq, 10), when(ar.LastTime),
						ar.ManifestSha256[:min(16, len(ar.ManifestSha256))] + "…", state,
						ar.File})
				}
				if err := a.table([]string{"FIRST", "LAST", "UNTIL", "MANIFEST", "RECORDS",
					"FILE"}, rows); err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "pruned through record %d; retention %d "+
					"years\n", resp.PrunedThrough, resp.RetentionYears)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.MarkFlagRequired("tenant")
	return cmd
}
