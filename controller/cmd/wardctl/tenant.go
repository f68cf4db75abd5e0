package main

import (
	"context"

	"github.com/spf13/cobra"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func (a *app) tenantCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Aliases: []string{"tenants"},
		Short: "Manage tenants (clinics)"}

	var display string
	create := &cobra.Command{
		Use: "create NAME", Short: "Add a tenant", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.CreateTenant(ctx, &wardv1.CreateTenantRequest{Id: args[0],
					DisplayName: display})
				if err != nil {
					return err
				}
				return a.printTenants(resp.Tenant, []*wardv1.Tenant{resp.Tenant})
			})
		},
	}
	create.Flags().StringVar(&display, "display-name", "", "human-readable name (default NAME)")

	list := &cobra.Command{
		Use: "list", Short: "List the tenants you can see", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.ListTenants(ctx, &wardv1.ListTenantsRequest{})
				if err != nil {
					return err
				}
				return a.printTenants(nil, resp.Tenants)
			})
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}

// printTenants prints one (single, not nil) or a list of tenants.
func (a *app) printTenants(single *wardv1.Tenant, ts []*wardv1.Tenant) error {
	if a.output == "json" {
		if single != nil {
			return a.printJSON(single)
		}
		return printJSONList(a, ts)
	}
	rows := make([][]string, 0, len(ts))
	for _, t := range ts {
		rows = append(rows, []string{t.Id, t.DisplayName, when(t.CreatedAt),
			orDash(t.CreatedBy)})
	}
	return a.table([]string{"ID", "DISPLAY NAME", "CREATED", "CREATED BY"}, rows)
}
