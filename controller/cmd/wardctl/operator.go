package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

var roles = map[string]wardv1.Role{
	"admin":      wardv1.Role_ROLE_ADMIN,
	"technician": wardv1.Role_ROLE_TECHNICIAN,
	"auditor":    wardv1.Role_ROLE_AUDITOR,
}

func (a *app) operatorCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "operator", Aliases: []string{"operators"},
		Short: "Manage operators and their certificates"}

	var (
		role, out string
		tenants   []string
		certTTL   time.Duration
	)
	create := &cobra.Command{
		Use:   "create NAME --role admin|technician|auditor",
		Short: "Register an operator; the key is made here and only the CSR is sent",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, ok := roles[role]
			if !ok {
				return fmt.Errorf("--role %q: want admin, technician or auditor", role)
			}
			if out == "" {
				out = filepath.Join("operators", args[0])
			}
			req := &wardv1.CreateOperatorRequest{Name: args[0], Role: r, Tenants: tenants}
			if certTTL != 0 {
				req.CertTtl = durationpb.New(certTTL)
			}
			return a.createOperator(req, out)
		},
	}
	f := create.Flags()
	f.StringVar(&role, "role", "", "admin, technician or auditor (required)")
	f.StringSliceVar(&tenants, "tenant", nil, "tenant the operator is limited to (repeatable)")
	f.StringVar(&out, "out", "", "directory for cert.pem, key.pem and ca.pem "+
		"(default ./operators/NAME)")
	f.DurationVar(&certTTL, "cert-ttl", 0, "certificate lifetime (default 2160h, 90 days)")
	create.MarkFlagRequired("role")

	list := &cobra.Command{
		Use: "list", Short: "List operators", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.ListOperators(ctx, &wardv1.ListOperatorsRequest{})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSONList(a, resp.Operators)
				}
				return a.operatorTable(resp.Operators)
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke NAME", Short: "Revoke an operator's certificates", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
				resp, err := c.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{Name: args[0]})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(resp.Operator)
				}
				return a.operatorTable([]*wardv1.Operator{resp.Operator})
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// createOperator makes a key, sends only its CSR, and writes the key, the certificate
// chain and the trust bundle to dir. It refuses to overwrite an existing key.
func (a *app) createOperator(req *wardv1.CreateOperatorRequest, dir string) error {
	keyPath := filepath.Join(dir, "key.pem")
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("%s already exists; choose another --out", keyPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	if req.CsrDer, err = pki.NewCSR(key, req.Name); err != nil {
		return err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return err
	}

	return a.call(func(ctx context.Context, c wardv1.AdminServiceClient) error {
		resp, err := c.CreateOperator(ctx, req)
		if err != nil {
			return err
		}
		files := []struct {
			name string
			data []byte
			mode os.FileMode
		}{
			{"key.pem", keyPEM, pki.PrivateMode},
			{"cert.pem", pki.EncodeCerts(resp.CertificateChain...), pki.PublicMode},
			{"ca.pem", pki.EncodeCerts(resp.CaCertificates...), pki.PublicMode},
		}
		for _, f := range files {
			if err := pki.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
				return err
			}
		}
		return a.printCreatedOperator(resp.Operator, dir)
	})
}

func (a *app) printCreatedOperator(op *wardv1.Operator, dir string) error {
	if a.output == "json" {
		raw, err := jsonOptions.Marshal(op)
		if err != nil {
			return err
		}
		out, err := json.Marshal(struct {
			Operator json.RawMessage `json:"operator"`
			Dir      string          `json:"dir"`
		}{raw, dir})
		if err != nil {
			return err
		}
		return a.writeIndented(out)
	}
	if err := a.operatorTable([]*wardv1.Operator{op}); err != nil {
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "\ncertificate, key and trust bundle written to %s\n", dir)
	return err
}

func (a *app) operatorTable(ops []*wardv1.Operator) error {
	rows := make([][]string, 0, len(ops))
	for _, o := range ops {
		role := strings.ToLower(strings.TrimPrefix(o.Role.String(), "ROLE_"))
		rows = append(rows, []string{o.Name, role, orDash(strings.Join(o.Tenants, ",")),
			when(o.CreatedAt), orDash(o.CreatedBy), yesNo(o.Revoked)})
	}
	return a.table([]string{"NAME", "ROLE", "TENANTS", "CREATED", "CREATED BY", "REVOKED"},
		rows)
}
