package main

import (
	"context"

	"github.com/spf13/cobra"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func (a *app) checkCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "check", Aliases: []string{"checks"},
		Short: "Show the latest state of baseline checks on agents"}

	var req wardv1.ListChecksRequest
	list := &cobra.Command{
		Use: "list [--agent ID] [--failing]", Short: "List check states", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.ListChecks(ctx, &req)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSONList(a, resp.Checks)
				}
				rows := make([][]string, 0, len(resp.Checks))
				for _, s := range resp.Checks {
					rows = append(rows, []string{s.Tenant, s.Agent, s.Check, s.State,
						orDash(s.Observed), when(s.Since)})
				}
				return a.table([]string{"TENANT", "AGENT", "CHECK", "STATE", "OBSERVED",
					"SINCE"}, rows)
			})
		},
	}
	f := list.Flags()
	f.StringVar(&req.Tenant, "tenant", "", "only this tenant")
	f.StringVar(&req.Agent, "agent", "", "only this agent")
	f.BoolVar(&req.Failing, "failing", false, "only failing checks")

	cmd.AddCommand(list)
	return cmd
}
