package main

import (
	"context"
	"errors"

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

	cmd.AddCommand(list, a.checkRunCommand())
	return cmd
}

// checkRunCommand is `wardctl check run`: the agents evaluate their baseline now.
func (a *app) checkRunCommand() *cobra.Command {
	var req wardv1.RunChecksRequest
	run := &cobra.Command{
		Use: "run (--agent ID | --tenant T) [--full]",
		Short: "Ask agents to evaluate their baseline now and report " +
			"(a signed command to each)",
		Long: "Each agent gets a signed evaluate_baseline command (sent now, or when it " +
			"connects, until the command expires), evaluates its baseline at once and " +
			"reports the checks whose state changed, or every check with --full. The " +
			"results show in `wardctl check list` once the report arrives.",
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if (req.Agent == "") == (req.Tenant == "") {
				return errors.New("name either --agent or --tenant")
			}
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.RunChecks(ctx, &req)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSONList(a, resp.Runs)
				}
				rows := make([][]string, 0, len(resp.Runs))
				for _, r := range resp.Runs {
					rows = append(rows, []string{r.Agent, r.CommandId, r.Status})
				}
				return a.table([]string{"AGENT", "COMMAND", "STATUS"}, rows)
			})
		},
	}
	f := run.Flags()
	f.StringVar(&req.Agent, "agent", "", "the agent to evaluate")
	f.StringVar(&req.Tenant, "tenant", "", "every agent of this tenant that is not revoked")
	f.BoolVar(&req.FullSnapshot, "full", false,
		"report every check, not only those whose state changed")
	return run
}
