package main

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
)

// newMessagesCommand inspects what a stopped controller holds of each agent's sequenced
// messages: how many, which range, and which numbers are absent. It opens the store
// directly, so it refuses to run while the controller holds it.
func newMessagesCommand(logger func() *slog.Logger) *cobra.Command {
	var dataDir, tenant string
	cmd := &cobra.Command{
		Use:   "messages",
		Short: "Summarise the agent messages a stopped controller has stored",
		Long: "Summarise, per agent, the sequenced messages in the store of a stopped " +
			"controller: the acknowledged sequence number, how many messages are stored, " +
			"how many are heartbeats, and any sequence numbers absent in between (heartbeats " +
			"an agent dropped because its spool was full, or heartbeats past their retention).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := badger.Open(install.PathsOf(dataDir).DB, logger())
			if err != nil {
				return fmt.Errorf("open store (is the controller still running?): %w", err)
			}
			defer st.Close()
			return summariseMessages(cmd, st, tenant, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "data directory of the stopped controller (required)")
	f.StringVar(&tenant, "tenant", "", "only this tenant")
	cmd.MarkFlagRequired("data-dir")
	return cmd
}

func summariseMessages(cmd *cobra.Command, st store.Store, tenant string, out io.Writer) error {
	ctx := cmd.Context()
	agents, err := st.ListAgents(ctx, tenant)
	if err != nil {
		return fmt.Errorf("list agents: %w", err)
	}

	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TENANT\tAGENT\tHOSTNAME\tACKED SEQ\tSTORED\tHEARTBEATS\tRANGE\tABSENT")
	for _, a := range agents {
		msgs, err := st.ListMessages(ctx, a.Tenant, a.ID, 0, 0)
		if err != nil {
			return fmt.Errorf("list messages of %s: %w", a.ID, err)
		}
		var heartbeats, absent int
		var first, last uint64
		for i, m := range msgs {
			if m.Type == "heartbeat" {
				heartbeats++
			}
			if i == 0 {
				first = m.Seq
			} else {
				absent += int(m.Seq - last - 1)
			}
			last = m.Seq
		}
		span := "-"
		if len(msgs) > 0 {
			span = fmt.Sprintf("%d..%d", first, last)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%d\n", a.Tenant, a.ID, a.Host.Hostname,
			a.AckedSeq, len(msgs), heartbeats, span, absent)
	}
	return w.Flush()
}
