package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func (a *app) agentCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Aliases: []string{"agents"},
		Short: "Inspect and revoke enrolled agents"}

	var tenant string
	list := &cobra.Command{
		Use: "list", Short: "List agents", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.ListAgents(ctx, &wardv1.ListAgentsRequest{Tenant: tenant})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSONList(a, resp.Agents)
				}
				return a.agentTable(resp.Agents)
			})
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant")

	show := &cobra.Command{
		Use: "show ID", Short: "Show one agent", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.GetAgent(ctx, &wardv1.GetAgentRequest{Id: args[0]})
				if err != nil {
					return err
				}
				return a.printAgent(resp.Agent)
			})
		},
	}

	var reason string
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an agent and close its stream", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.RevokeAgent(ctx, &wardv1.RevokeAgentRequest{Id: args[0],
					Reason: reason})
				if err != nil {
					return err
				}
				return a.printAgent(resp.Agent)
			})
		},
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why, for the record")
	cmd.AddCommand(list, show, revoke, a.agentRolesCommand())
	return cmd
}

// agentRolesCommand shows or sets the roles an agent may take.
func (a *app) agentRolesCommand() *cobra.Command {
	var set []string
	roles := &cobra.Command{
		Use:   "roles ID [--set host,collector]",
		Short: "Show or set the roles an agent may take (its Hello may list only these)",
		Long: "Show the roles an agent may take, or replace them with --set. Agents " +
			"enrolled before tokens carried roles are host-only; allow an existing " +
			"collector with --set host,collector. Its open stream is closed, so that it " +
			"reconnects under the new roles.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				var ag *wardv1.Agent
				if cmd.Flags().Changed("set") {
					resp, err := c.SetAgentRoles(ctx, &wardv1.SetAgentRolesRequest{
						Id: args[0], Roles: set})
					if err != nil {
						return err
					}
					ag = resp.Agent
				} else {
					resp, err := c.GetAgent(ctx, &wardv1.GetAgentRequest{Id: args[0]})
					if err != nil {
						return err
					}
					ag = resp.Agent
				}
				if a.output == "json" {
					return a.printJSON(ag)
				}
				_, err := fmt.Fprintln(a.stdout, roleList(ag.Roles))
				return err
			})
		},
	}
	roles.Flags().StringSliceVar(&set, "set", nil,
		"roles to allow: host, collector (comma-separated; host is always included)")
	return roles
}

func (a *app) agentTable(as []*wardv1.Agent) error {
	rows := make([][]string, 0, len(as))
	for _, ag := range as {
		state := yesNo(ag.Online)
		if ag.Revoked {
			state = "revoked"
		}
		rows = append(rows, []string{ag.Id, ag.Tenant, orDash(ag.Hostname), state,
			when(ag.LastSeen), when(ag.CertExpires), roleList(ag.Roles)})
	}
	return a.table([]string{"ID", "TENANT", "HOSTNAME", "ONLINE", "LAST SEEN", "CERT EXPIRES",
		"ROLES"}, rows)
}

// printAgent prints one agent as JSON or as "field: value" lines.
func (a *app) printAgent(ag *wardv1.Agent) error {
	if a.output == "json" {
		return a.printJSON(ag)
	}
	h := ag.GetHost()
	rows := [][]string{
		{"id:", ag.Id}, {"tenant:", ag.Tenant}, {"hostname:", orDash(ag.Hostname)},
		{"online:", yesNo(ag.Online)}, {"last seen:", when(ag.LastSeen)},
		{"revoked:", yesNo(ag.Revoked)}, {"tier:", strconv.FormatUint(uint64(ag.Tier), 10)},
		{"enrolled:", when(ag.EnrolledAt)}, {"token:", orDash(ag.TokenId)},
		{"cert serial:", orDash(ag.CertSerial)}, {"cert expires:", when(ag.CertExpires)},
		{"acked seq:", strconv.FormatUint(ag.AckedSeq, 10)},
		{"os:", orDash(strings.TrimSpace(h.GetOs() + " " + h.GetOsVersion()))},
		{"kernel:", orDash(h.GetKernel())}, {"arch:", orDash(h.GetArch())},
		{"addresses:", orDash(strings.Join(h.GetAddresses(), ", "))},
		{"agent version:", orDash(h.GetAgentVersion())},
		{"roles:", roleList(ag.Roles)},
		{"hello roles:", orDash(strings.Join(h.GetRoles(), ","))},
	}
	w := a.stdout
	for _, r := range rows {
		if _, err := w.Write([]byte(padRight(r[0], 15) + r[1] + "\n")); err != nil {
			return err
		}
	}
	return nil
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s + " "
	}
	return s + strings.Repeat(" ", n-len(s))
}
