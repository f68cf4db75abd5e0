package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// callRemediation dials the controller like call, with a RemediationService client.
func (a *app) callRemediation(fn func(context.Context,
	wardv1.RemediationServiceClient) error) error {
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

	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	return fn(ctx, wardv1.NewRemediationServiceClient(conn))
}

func (a *app) baselineCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "baseline", Aliases: []string{"baselines"},
		Short: "Show and push tenants' baselines, exclude checks"}

	var listTenant string
	list := &cobra.Command{
		Use: "list", Short: "Each tenant's baseline and the agents' versions", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.ListBaselines(ctx,
					&wardv1.ListBaselinesRequest{Tenant: listTenant})
				if err != nil {
					return err
				}
				return a.printBaselines(resp.Baselines)
			})
		},
	}
	list.Flags().StringVar(&listTenant, "tenant", "", "only this tenant")

	show := &cobra.Command{
		Use: "show TENANT", Short: "Print a tenant's baseline document (YAML)",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.ShowBaseline(ctx, &wardv1.ShowBaselineRequest{Tenant: args[0]})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(resp)
				}
				_, err = a.stdout.Write(resp.Document)
				return err
			})
		},
	}

	push := &cobra.Command{
		Use:   "push TENANT FILE",
		Short: "Validate a baseline document and publish it to the tenant's agents",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			doc, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				resp, err := c.PushBaseline(ctx, &wardv1.PushBaselineRequest{
					Tenant: args[0], FileName: filepath.Base(args[1]), Document: doc})
				if err != nil {
					return err
				}
				return a.printBaselines([]*wardv1.TenantBaseline{resp.Baseline})
			})
		},
	}

	var reason string
	exclude := &cobra.Command{
		Use: "exclude TENANT CHECK --reason TEXT", Short: "Record that a tenant excludes a check",
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callRemediation(func(ctx context.Context,
				c wardv1.RemediationServiceClient) error {
				_, err := c.ExcludeCheck(ctx, &wardv1.ExcludeCheckRequest{Tenant: args[0],
					Check: args[1], Reason: reason})
				return err
			})
		},
	}
	exclude.Flags().StringVar(&reason, "reason", "", "why (required; it is evidence)")
	exclude.MarkFlagRequired("reason")

	cmd.AddCommand(list, show, push, exclude)
	return cmd
}

func (a *app) printBaselines(bs []*wardv1.TenantBaseline) error {
	if a.output == "json" {
		return printJSONList(a, bs)
	}
	rows := make([][]string, 0, len(bs))
	for _, b := range bs {
		current := 0
		for _, v := range b.AgentVersions {
			if v == b.Version {
				current++
			}
		}
		excl := make([]string, 0, len(b.Exclusions))
		for c := range b.Exclusions {
			excl = append(excl, c)
		}
		sort.Strings(excl)
		rows = append(rows, []string{b.Tenant, b.BaselineId, b.Version,
			orDash(b.PublishedBy), when(b.PublishedAt),
			strconv.Itoa(current) + "/" + strconv.Itoa(len(b.AgentVersions)),
			orDash(fmt.Sprint(excl))})
	}
	return a.table([]string{"TENANT", "BASELINE", "VERSION", "PUBLISHED BY", "PUBLISHED",
		"AGENTS ON IT", "EXCLUDED"}, rows)
}
