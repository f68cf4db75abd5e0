package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Aliases: []string{"tokens"},
		Short: "Manage enrollment tokens"}

	var (
		tenant, cidr string
		ttl          time.Duration
		uses, tier   uint32
		roles        []string
	)
	create := &cobra.Command{
		Use:   "create --tenant T [--role host|collector ...]",
		Short: "Issue a one-time enrollment token; prints the secret alone",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			req := &wardv1.CreateTokenRequest{Tenant: tenant, Ttl: durationpb.New(ttl),
				Uses: uses, Cidr: cidr, Tier: tier, Roles: roles}
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.CreateToken(ctx, req)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(resp)
				}
				_, err = fmt.Fprintln(a.stdout, resp.Secret)
				return err
			})
		},
	}
	f := create.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant to enroll into (required)")
	f.DurationVar(&ttl, "ttl", 24*time.Hour, "lifetime, at most 720h")
	f.Uint32Var(&uses, "uses", 1, "number of enrollments, at most 1000")
	f.StringVar(&cidr, "cidr", "", "network enrollments must come from")
	f.Uint32Var(&tier, "tier", 1, "tier of enrolled agents (1 to 3)")
	f.StringSliceVar(&roles, "role", []string{"host"}, "roles enrolled agents may take: "+
		"host, collector (repeat or comma-separate; host is always included)")
	create.MarkFlagRequired("tenant")

	var listTenant string
	list := &cobra.Command{
		Use: "list", Short: "List tokens (never their secrets), newest first", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.ListTokens(ctx, &wardv1.ListTokensRequest{Tenant: listTenant})
				if err != nil {
					return err
				}
				return a.printTokens(resp.Tokens, false)
			})
		},
	}
	list.Flags().StringVar(&listTenant, "tenant", "", "only this tenant")

	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Make a token unusable", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.RevokeToken(ctx, &wardv1.RevokeTokenRequest{Id: args[0]})
				if err != nil {
					return err
				}
				return a.printTokens([]*wardv1.Token{resp.Token}, true)
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func (a *app) printTokens(ts []*wardv1.Token, single bool) error {
	if a.output == "json" {
		if single {
			return a.printJSON(ts[0])
		}
		return printJSONList(a, ts)
	}
	rows := make([][]string, 0, len(ts))
	for _, t := range ts {
		rows = append(rows, []string{t.Id, t.Tenant, when(t.ExpiresAt),
			strconv.FormatUint(uint64(t.UsesLeft), 10), orDash(t.Cidr),
			strconv.FormatUint(uint64(t.Tier), 10), roleList(t.Roles), yesNo(t.Revoked),
			orDash(t.CreatedBy)})
	}
	return a.table([]string{"ID", "TENANT", "EXPIRES", "USES LEFT", "CIDR", "TIER", "ROLES",
		"REVOKED", "CREATED BY"}, rows)
}

// roleList shows agent roles as a comma list; none (a token made before tokens carried
// roles) shows as host, which is what its agents get.
func roleList(roles []string) string {
	if len(roles) == 0 {
		return "host"
	}
	return strings.Join(roles, ",")
}
