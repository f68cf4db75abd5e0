package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func (a *app) incidentCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "incident", Aliases: []string{"incidents"},
		Short: "List, show, approve, escalate and resolve incidents"}

	var req wardv1.ListIncidentsRequest
	list := &cobra.Command{
		Use: "list", Short: "List incidents, oldest first", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.ListIncidents(ctx, &req)
				if err != nil {
					return err
				}
				return a.printIncidents(resp.Incidents)
			})
		},
	}
	f := list.Flags()
	f.StringVar(&req.Tenant, "tenant", "", "only this tenant")
	f.StringVar(&req.Agent, "agent", "", "only this agent")
	f.StringVar(&req.State, "state", "", "only this state (open, remediating, "+
		"awaiting_approval, escalated, resolved)")
	f.BoolVar(&req.Unresolved, "unresolved", false, "only unresolved incidents")

	show := &cobra.Command{
		Use: "show ID", Short: "Show an incident and its history", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.GetIncident(ctx, &wardv1.GetIncidentRequest{Id: args[0]})
				if err != nil {
					return err
				}
				return a.printIncident(resp.Incident)
			})
		},
	}

	approve := &cobra.Command{
		Use: "approve ID", Short: "Approve the incident's runbook (recorded with your name)",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.ApproveIncident(ctx,
					&wardv1.ApproveIncidentRequest{Id: args[0]})
				if err != nil {
					return err
				}
				return a.printIncidents([]*wardv1.Incident{resp.Incident})
			})
		},
	}

	var escReason, resReason string
	escalate := &cobra.Command{
		Use: "escalate ID [--reason TEXT]", Short: "Escalate an incident (webhook)",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.EscalateIncident(ctx,
					&wardv1.EscalateIncidentRequest{Id: args[0], Reason: escReason})
				if err != nil {
					return err
				}
				return a.printIncidents([]*wardv1.Incident{resp.Incident})
			})
		},
	}
	escalate.Flags().StringVar(&escReason, "reason", "", "why")

	resolve := &cobra.Command{
		Use: "resolve ID [--reason TEXT]", Short: "Resolve an incident by hand",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.ResolveIncident(ctx,
					&wardv1.ResolveIncidentRequest{Id: args[0], Reason: resReason})
				if err != nil {
					return err
				}
				return a.printIncidents([]*wardv1.Incident{resp.Incident})
			})
		},
	}
	resolve.Flags().StringVar(&resReason, "reason", "", "why")

	cmd.AddCommand(list, show, approve, escalate, resolve)
	return cmd
}

func (a *app) printIncidents(is []*wardv1.Incident) error {
	if a.output == "json" {
		return printJSONList(a, is)
	}
	rows := make([][]string, 0, len(is))
	for _, i := range is {
		rows = append(rows, []string{i.Id, i.Tenant, i.Agent, i.Check, i.State,
			orDash(i.Runbook), when(i.OpenedAt), orDash(i.Reason)})
	}
	return a.table([]string{"ID", "TENANT", "AGENT", "CHECK", "STATE", "RUNBOOK", "OPENED",
		"REASON"}, rows)
}

func (a *app) printIncident(i *wardv1.Incident) error {
	if a.output == "json" {
		return a.printJSON(i)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "id:          %s\ntenant:      %s\nagent:       %s\ncheck:       %s\n",
		i.Id, i.Tenant, i.Agent, i.Check)
	fmt.Fprintf(&b, "state:       %s\nseverity:    %s\nrunbook:     %s\nobserved:    %s\n",
		i.State, orDash(i.Severity), orDash(i.Runbook), orDash(i.Observed))
	fmt.Fprintf(&b, "approved by: %s\nreason:      %s\nopened:      %s\nresolved:    %s\n",
		orDash(i.ApprovedBy), orDash(i.Reason), when(i.OpenedAt), when(i.ResolvedAt))
	fmt.Fprintf(&b, "commands:    %s\nhistory:\n", orDash(strings.Join(i.Commands, ", ")))
	if _, err := fmt.Fprint(a.stdout, b.String()); err != nil {
		return err
	}
	rows := make([][]string, 0, len(i.History))
	for _, e := range i.History {
		rows = append(rows, []string{when(e.At), e.Action, e.State, e.Actor,
			orDash(e.Command), orDash(e.Detail)})
	}
	return a.table([]string{"AT", "ACTION", "STATE", "ACTOR", "COMMAND", "DETAIL"}, rows)
}
