package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// latch connectors list|add|delete: the upstream identity providers kept
// in the database. config.yaml's are upserted at every start; these
// commands manage the others (and can delete a config one, which the next
// start brings back while the file declares it).

func (c *cli) connectorsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "connectors", Short: "Manage upstream identity providers (OIDC, OAuth 2.0, LDAP)"}
	var file string
	add := &cobra.Command{
		Use:   "add --file FILE",
		Short: "Add a connector written as YAML (the keys of one config.yaml connectors entry; - reads stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readConnectorFile(file, c.stdin)
			if err != nil {
				return err
			}
			fc, err := config.ParseConnector(data)
			if err != nil {
				return err
			}
			return c.withConnectors(cmd.Context(), func(cs storage.Connectors, issuer string) error {
				rec, err := server.ConnectorRecord(fc, server.ConnectorFromAPI)
				if err != nil {
					return err
				}
				if err := cs.CreateConnector(cmd.Context(), rec); errors.Is(err, storage.ErrAlreadyExists) {
					return fmt.Errorf("a connector with id %q exists already", fc.ID)
				} else if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "connector %s added; its redirect URI at the upstream is %s\n", fc.ID, upstreamRedirect(issuer, fc.ID, fc.Type))
				return nil
			})
		},
	}
	add.Flags().StringVar(&file, "file", "", "YAML file of one connector (- for stdin)")
	_ = add.MarkFlagRequired("file")
	list := &cobra.Command{
		Use:   "list",
		Short: "List connectors and their redirect URIs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withConnectors(cmd.Context(), func(cs storage.Connectors, issuer string) error {
				all, err := cs.ListConnectors(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTYPE\tNAME\tSOURCE\tREDIRECT URI")
				for _, k := range all {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Type, k.Name, k.Source, upstreamRedirect(issuer, k.ID, k.Type))
				}
				return tw.Flush()
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a connector and its links (the users it made stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withConnectors(cmd.Context(), func(cs storage.Connectors, _ string) error {
				if err := cs.DeleteConnector(cmd.Context(), args[0]); errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no connector %q", args[0])
				} else if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "connector %s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, del)
	return cmd
}

// withConnectors runs fn on the configured database's connectors, with
// the issuer their redirect URIs start with.
func (c *cli) withConnectors(ctx context.Context, fn func(cs storage.Connectors, issuer string) error) error {
	return c.withStore(ctx, func(f config.File, st storage.Store) error {
		cs, ok := st.(storage.Connectors)
		if !ok {
			return errors.New("this database keeps no connectors")
		}
		return fn(cs, f.Issuer)
	})
}

func readConnectorFile(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(name)
}

// printConnectors is `latch serve`'s line per connector: the redirect URI
// to register at its upstream.
func printConnectors(ctx context.Context, w io.Writer, st storage.Store, issuer string) error {
	cs, ok := st.(storage.Connectors)
	if !ok {
		return nil
	}
	all, err := cs.ListConnectors(ctx)
	if err != nil {
		return err
	}
	for _, k := range all {
		fmt.Fprintf(w, "connector %s (%s): redirect URI %s\n", k.ID, k.Name, upstreamRedirect(issuer, k.ID, k.Type))
	}
	return nil
}

// upstreamRedirect is the redirect URI to register at a connector's
// upstream; an LDAP directory has none: its people type their password
// into Latch's own form.
func upstreamRedirect(issuer, id, typ string) string {
	if typ == "ldap" {
		return "none (ldap: the password is typed into Latch's form)"
	}
	return server.UpstreamRedirectURI(issuer, id)
}
