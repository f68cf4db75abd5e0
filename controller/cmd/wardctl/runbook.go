package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func (a *app) runbookCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "runbook", Aliases: []string{"runbooks"},
		Short: "List, show and run runbooks"}

	list := &cobra.Command{
		Use: "list", Short: "List the runbooks the controller knows", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.ListRunbooks(ctx, &wardv1.ListRunbooksRequest{})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSONList(a, resp.Runbooks)
				}
				rows := make([][]string, 0, len(resp.Runbooks))
				for _, r := range resp.Runbooks {
					rows = append(rows, []string{r.Id, strings.Join(r.Checks, ","),
						yesNo(r.AutoRemediate), fmt.Sprint(len(r.Steps)), r.Title})
				}
				return a.table([]string{"ID", "CHECKS", "AUTO", "STEPS", "TITLE"}, rows)
			})
		},
	}

	show := &cobra.Command{
		Use: "show ID", Short: "Show a runbook's steps", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.GetRunbook(ctx, &wardv1.GetRunbookRequest{Id: args[0]})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(resp.Runbook)
				}
				r := resp.Runbook
				fmt.Fprintf(a.stdout, "id:      %s\ntitle:   %s\nchecks:  %s\nauto:    %s\n"+
					"verify:  %s\nparams:  %s\nsteps:\n", r.Id, r.Title,
					strings.Join(r.Checks, ", "), yesNo(r.AutoRemediate),
					strings.Join(r.Verify, ", "), orDash(strings.Join(r.Params, ", ")))
				rows := make([][]string, 0, len(r.Steps))
				for _, s := range r.Steps {
					keys := make([]string, 0, len(s.Params))
					for k := range s.Params {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					var ps []string
					for _, k := range keys {
						ps = append(ps, k+"="+s.Params[k])
					}
					rows = append(rows, []string{s.Action, strings.Join(ps, " ")})
				}
				return a.table([]string{"ACTION", "PARAMS"}, rows)
			})
		},
	}

	var dryRun bool
	run := &cobra.Command{
		Use:   "run ID --agent AGENT [--dry-run]",
		Short: "Issue a runbook on an agent (signed; counts as approving its incident)",
		Args:  cobra.ExactArgs(1),
	}
	var agent string
	run.RunE = func(_ *cobra.Command, args []string) error {
		return a.callRemediation(func(ctx context.Context,
			c wardv1.RemediationServiceClient) error {
			resp, err := c.RunRunbook(ctx, &wardv1.RunRunbookRequest{Agent: agent,
				Runbook: args[0], DryRun: dryRun})
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(resp)
			}
			return a.table([]string{"COMMAND", "INCIDENT", "STATUS"},
				[][]string{{resp.CommandId, orDash(resp.Incident), resp.Status}})
		})
	}
	run.Flags().StringVar(&agent, "agent", "", "target agent (required)")
	run.Flags().BoolVar(&dryRun, "dry-run", false, "report what would change, change nothing")
	run.MarkFlagRequired("agent")

	var tierAgent string
	var tier uint32
	setTier := &cobra.Command{
		Use: "set-tier --agent AGENT --tier N", Short: "Change an agent's tier (1 to 3)",
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				_, err := c.SetAgentTier(ctx, &wardv1.SetAgentTierRequest{Agent: tierAgent,
					Tier: tier})
				return err
			})
		},
	}
	setTier.Flags().StringVar(&tierAgent, "agent", "", "agent (required)")
	setTier.Flags().Uint32Var(&tier, "tier", 0, "tier: 1, 2 or 3 (required)")
	setTier.MarkFlagRequired("agent")
	setTier.MarkFlagRequired("tier")

	cmd.AddCommand(list, show, run, setTier)
	return cmd
}
